package main

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// initSchema is the starter schema `iotod init` writes: the repository's
// schema.json5 (TestInitSchemaIsTheDefault keeps the two equal).
//
//go:embed initfiles/schema.json5
var initSchema []byte

func newInitCmd() *cobra.Command {
	var dir, site, broker, store string
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "write a device's pipelines.yaml and a starter schema.json5 into a folder",
		Long: `init writes a device's config (pipelines.yaml: its store, an MQTT connection to the
cloud's broker, the up and apply pipelines, the local API) and a starter schema.json5 into --dir,
for iotod run in that folder. The store is badger on a 64-bit build and sqlite on a 32-bit one
(armv7, 386), where badger cannot run; --store chooses. Existing files are kept unless --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if store == "" {
				store = defaultDeviceStore()
			}
			files, err := initFiles(site, broker, store)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if !force {
				for _, f := range files {
					p := filepath.Join(dir, f.name)
					if _, err := os.Stat(p); err == nil {
						return fmt.Errorf("init: %s exists: nothing was written (--force replaces it)", p)
					}
				}
			}
			for _, f := range files {
				p := filepath.Join(dir, f.name)
				if err := os.WriteFile(p, f.data, 0o644); err != nil {
					return fmt.Errorf("init: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "device %s, store %s, broker %s: set IOTOD_DEVICE_PASSWORD, then `iotod run` in %s\n", site, store, broker, dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", ".", "the folder to write into")
	f.StringVar(&site, "site", "device-1", "the device's site name (its MQTT user and topics)")
	f.StringVar(&broker, "broker", "127.0.0.1:1883", "the cloud's MQTT broker, host:port")
	f.StringVar(&store, "store", "", "the device store: badger or sqlite (default: badger on 64-bit builds, sqlite on 32-bit)")
	f.BoolVar(&force, "force", false, "replace files that exist")
	return cmd
}

type initFile struct {
	name string
	data []byte
}

// initFiles are the files init writes.
func initFiles(site, broker, store string) ([]initFile, error) {
	// The stores of this build: components_stores_*.go.
	if err := checkDeviceStore(store); err != nil {
		return nil, fmt.Errorf("init: --store %q: %w", store, err)
	}
	storage := "type: badger\n    path: ./data/device"
	if store == "sqlite" {
		storage = "type: sqlite\n    path: ./data/device.db"
	}
	if site == "" || strings.ContainsAny(site, "/#+ \"'") {
		return nil, errors.New("init: --site: a name without spaces, quotes, / # or +")
	}
	if broker == "" || strings.ContainsAny(broker, " \"'") {
		return nil, errors.New("init: --broker: host:port")
	}
	cfg := fmt.Sprintf(`# A device written by iotod init: its database, an MQTT connection to the
# cloud's broker, and the pipelines up (its changes to the cloud) and apply
# (the cloud's changes here). docs/configuration.md has every key.
site: %[1]s
schema: schema.json5
storage:
  local:
    %[2]s
    durability: sync          # a write returns once it is on disk
transports:
  cloud:
    type: mqtt
    url: mqtt://%[3]s
    username: %[1]s
    password: ${IOTOD_DEVICE_PASSWORD}
    session_dir: ./data/mqtt
pipelines:
  up:
    from: storage/local
    stages:
      - policy: {}
      - batch: {delay: 200ms, limit: 64KB, count: 500}
    to: transport/cloud
  apply:
    from: transport/cloud
    stages: [policy]
    to: storage/local
api:
  listen: 127.0.0.1:7400
`, site, storage, broker)
	return []initFile{{"pipelines.yaml", []byte(cfg)}, {"schema.json5", initSchema}}, nil
}
