package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/config"
	"github.com/iotod/iotod/schema"
)

// configFiles returns the files of the repeatable -c flag, in order.
func configFiles(cmd *cobra.Command) []string {
	paths, _ := cmd.Flags().GetStringArray("config")
	if len(paths) == 0 {
		return []string{defaultConfig}
	}
	return paths
}

// loadConfig loads and merges the config files with the built-in plugins.
func loadConfig(paths ...string) (*config.Config, error) {
	reg, err := components()
	if err != nil {
		return nil, fmt.Errorf("plugin registry: %w", err)
	}
	return config.Load(reg, paths...)
}

// loadChecked loads the config files and the schema they name, touching
// no data. Every problem of the config, or else of the schema, is returned.
func loadChecked(paths ...string) (*config.Config, *schema.Schema, error) {
	cfg, err := loadConfig(paths...)
	if err != nil {
		return nil, nil, err
	}
	sch, err := schema.Load(cfg.Schema)
	if err != nil {
		return nil, nil, err
	}
	return cfg, sch, nil
}
