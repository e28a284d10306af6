package main

import (
	"github.com/iotod/iotod/config"
	"github.com/iotod/iotod/schema"
)

// loadChecked loads the config at path and the schema it names, touching
// no data. Every problem of the config, or else of the schema, is returned.
func loadChecked(path string) (*config.Config, *schema.Schema, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	sch, err := schema.Load(cfg.Schema)
	if err != nil {
		return nil, nil, err
	}
	return cfg, sch, nil
}
