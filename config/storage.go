package config

import (
	"strings"

	"github.com/iotod/iotod/plugins/storage/badger"
)

// StorageConfig is one entry of the storage map: its type, and the
// engine's own keys beside it.
type StorageConfig struct {
	// Type is the storage engine; only "badger" for now.
	Type string `yaml:"type"`
	// Badger holds the badger keys (path, durability, mem_table_size, ...);
	// Path is relative to the config file's folder.
	Badger badger.Config `yaml:",inline"`

	_ struct{}
}

// newDefaultStorageConfig returns a storage entry holding every default.
func newDefaultStorageConfig() *StorageConfig {
	return &StorageConfig{Badger: badger.NewDefaultConfig()}
}

// badgerFaults splits the faults of badger.Config.Validate into key and
// message; each reads "key: message".
func badgerFaults(err error) [][2]string {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([][2]string, 0, len(errs))
	for _, e := range errs {
		key, msg, ok := strings.Cut(e.Error(), ": ")
		if !ok || strings.ContainsAny(key, " \n") {
			key, msg = "", e.Error()
		}
		out = append(out, [2]string{key, msg})
	}
	return out
}
