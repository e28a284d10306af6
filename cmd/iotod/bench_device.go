//go:build !device || !(386 || arm || mips || mipsle)

package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/bench"
	"github.com/iotod/iotod/pipeline"
)

// newBenchReplicateDeviceCmd is the device process `iotod bench replicate`
// starts: it reads a bench.DeviceSpec from --spec, reports as JSON lines on
// stdout and waits for "go" on stdin.
func newBenchReplicateDeviceCmd() *cobra.Command {
	var spec string
	cmd := &cobra.Command{
		Use:    "device",
		Short:  "The device side of bench replicate, in a process of its own (started by bench replicate)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var s bench.DeviceSpec
			if err := json.Unmarshal([]byte(spec), &s); err != nil {
				return fmt.Errorf("--spec: %w", err)
			}
			cmd.SilenceUsage = true
			return bench.RunDevice(cmd.Context(), s, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&spec, "spec", "", "the device's work, as JSON (bench.DeviceSpec)")
	return cmd
}

// parseSize reads a size flag; empty is 0.
func parseSize(flag, s string) (pipeline.ByteSize, error) {
	if s == "" {
		return 0, nil
	}
	b, err := pipeline.ParseByteSize(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", flag, err)
	}
	return b, nil
}
