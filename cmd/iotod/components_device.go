//go:build device

package main

import (
	"github.com/spf13/cobra"

	"github.com/iotod/iotod/pipeline"
)

// A device build (`-tags device`) has no cloud-only store: its binary is
// smaller by their SDKs.
func cloudStorage() []pipeline.Factory { return nil }

// cloudOmitted names the cloud stores a device build leaves out.
func cloudOmitted() []pipeline.Omitted {
	const why = "not in this device build (device builds leave out the cloud stores and their SDKs; the full build, iotod, has them)"
	return []pipeline.Omitted{omittedStore("dynamodb", why), omittedStore("postgres", why)}
}

func cloudBenchCmds() []*cobra.Command { return nil }

func cloudCmds() []*cobra.Command { return nil }
