//go:build !device || !(386 || arm || mips || mipsle)

package main

import (
	"github.com/spf13/cobra"

	"github.com/iotod/iotod/bench"
)

// newBenchAPICmd is `iotod bench api`: P11, the status page and GET
// /v1/devices of a cloud worker with many devices, beside GET /v1/status.
func newBenchAPICmd() *cobra.Command {
	var o bench.APIOptions
	var keep bool
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "api",
		Short: "P11: the status page and /v1/devices of a cloud worker with 10,000 devices, over HTTP, beside /v1/status",
		Long: `A cloud worker (badger cloud store, ingest pipeline) records --devices devices, each
sending it one batch through its transport (every seventh refused in part), and saves
them; its API with the status page then serves the page, pages of /v1/devices (first,
last, sorted and filtered as the page asks, 1000 rows) and /metrics, each --requests
times over loopback HTTP, interleaved with /v1/status, the baseline. Prints p50, p99
and max per endpoint and the verdict against P11's bar (every answer <= 50 ms).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runBench(&o.Dir, keep, cpuProfile, func() error { return bench.RunAPI(cmd.Context(), o) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "folder for the cloud store (default: a new temporary folder)")
	f.BoolVar(&keep, "keep", false, "keep the folder afterwards")
	f.IntVar(&o.Devices, "devices", 10_000, "devices in the fleet")
	f.IntVar(&o.Requests, "requests", 200, "timed requests per endpoint")
	f.BoolVar(&o.JSON, "json", false, "print the figures as one JSON document instead of the text report")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}
