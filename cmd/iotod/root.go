package main

import (
	"github.com/spf13/cobra"
)

// defaultConfig is the config file used when -c is not given.
const defaultConfig = "pipelines.yaml"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "iotod",
		Short: "A crash-safe local database for IoT devices, replicated to the cloud",
		Long: `iotod keeps a device's data in a local OneTable-style database (badger
storage, crash-safe) and serves it over a local HTTP/JSON API.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringArrayP("config", "c", []string{defaultConfig},
		"config file; repeat to merge several, later files overriding earlier ones")
	root.AddCommand(newRunCmd(), newInitCmd(), newValidateCmd(), newPluginsCmd(), newDBCmd(), newStatusCmd(), newTriggersCmd(), newDeadLettersCmd(), newSyncCmd(), newBenchCmd())
	root.AddCommand(newDevicesCmd(), newReloadCmd())
	root.AddCommand(cloudCmds()...)
	addVersionCmd(root) // iotod version, iotod --version
	return root
}
