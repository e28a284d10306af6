//go:build device && (386 || arm || mips || mipsle)

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// A 32-bit device build has no benchmarks (bench.go): most of them run on
// badger, which this build leaves out, and `bench db --store sqlite` runs
// from the full build of the same archive, which has SQLite and runs here.
var errNoBench = errors.New("bench: the benchmarks are not in this device build (32-bit device builds include sqlite, not badger, which most of them run on; " +
	"the full build, iotod, has them all: iotod bench db --store sqlite runs on 32-bit)")

func newBenchCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "bench",
		Short:              "Not in 32-bit device builds: the full build (iotod) has the benchmarks",
		DisableFlagParsing: true,
		RunE:               func(*cobra.Command, []string) error { return errNoBench },
	}
}
