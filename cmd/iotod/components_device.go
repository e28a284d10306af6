//go:build device

package main

import (
	"github.com/spf13/cobra"

	"github.com/iotod/iotod/pipeline"
)

// A device build (`-tags device`) has no cloud-only store: its binary is
// smaller by their SDKs.
func cloudStorage() []pipeline.Factory { return nil }

func cloudBenchCmds() []*cobra.Command { return nil }

func cloudCmds() []*cobra.Command { return nil }
