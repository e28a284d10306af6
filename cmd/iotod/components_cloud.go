//go:build !device

package main

import (
	"github.com/spf13/cobra"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/dynamodb"
	"github.com/iotod/iotod/plugins/storage/postgres"
)

// cloudStorage lists the stores of the cloud side that a device build
// (`-tags device`, `make build-device`) leaves out with their SDKs.
func cloudStorage() []pipeline.Factory {
	return []pipeline.Factory{dynamodb.NewFactory(), postgres.NewFactory()}
}

// cloudOmitted: the full build leaves no cloud store out.
func cloudOmitted() []pipeline.Omitted { return nil }

// cloudBenchCmds are the benches of those stores.
func cloudBenchCmds() []*cobra.Command {
	return []*cobra.Command{newBenchDynamoDBCmd(), newBenchPostgresCmd()}
}

// cloudCmds are the commands of those stores.
func cloudCmds() []*cobra.Command { return []*cobra.Command{newStorageCmd()} }
