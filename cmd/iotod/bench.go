package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/bench"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure iotod beside raw baselines run in the same process",
	}
	cmd.AddCommand(newBenchDBCmd())
	return cmd
}

func newBenchDBCmd() *cobra.Command {
	var o bench.DBOptions
	var keep bool
	cmd := &cobra.Command{
		Use:   "db",
		Short: "P1 durable writes, P2 async writes and P9 reads, each beside raw badger",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Dir == "" {
				dir, err := os.MkdirTemp("", "iotod-bench-")
				if err != nil {
					return err
				}
				o.Dir = dir
			}
			if !keep {
				defer os.RemoveAll(o.Dir)
			}
			o.Out = cmd.OutOrStdout()
			return bench.RunDB(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "folder for the benchmark stores (default: a new temporary folder, on the same disk as /tmp)")
	f.BoolVar(&keep, "keep", false, "keep the benchmark stores afterwards")
	f.IntVar(&o.Writers, "writers", 64, "concurrent writers for P1 and P2")
	f.DurationVar(&o.Duration, "duration", 3*time.Second, "length of each measured run")
	f.IntVar(&o.Runs, "runs", 3, "runs per write figure (the median is reported)")
	f.IntVar(&o.ReadItems, "items", 1_000_000, "items loaded for P9")
	return cmd
}
