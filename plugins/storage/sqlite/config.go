package sqlite

import (
	"errors"
	"fmt"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// Durability modes.
const (
	// DurabilitySync makes Update return only after its commit is on disk
	// (SQLite's synchronous=FULL in WAL mode: the log is fsynced at every
	// commit, which group commit shares among the writers waiting).
	DurabilitySync = "sync"
	// DurabilityAsync makes Update return after commit; the log is fsynced
	// at checkpoints (synchronous=NORMAL): a power cut may lose the last
	// commits, a process crash loses nothing and nothing is ever corrupt.
	DurabilityAsync = "async"
)

// Config is the user configuration of a SQLite store.
type Config struct {
	// Path is the database file. Required.
	Path string `yaml:"path" desc:"the database file, relative to the config file's folder (required)"`
	// Durability is "sync" (default) or "async"; see the constants.
	Durability string `yaml:"durability" desc:"sync: an update returns once its commit is on disk (group commit); async: once committed, fsynced at checkpoints"`
	// Readers is how many connections serve reads at once. Default 4.
	Readers int `yaml:"readers" desc:"connections serving reads at once (at least 1)"`
	// CacheSize is SQLite's page cache per connection, in bytes. Default
	// 2 MiB.
	CacheSize pipeline.ByteSize `yaml:"cache_size" desc:"page cache of each connection, e.g. 2MB"`
	// MaxBatch bounds how many waiting updates one transaction takes.
	// Default 256.
	MaxBatch int `yaml:"max_batch" desc:"updates of concurrent writers committed together at most (group commit)"`
	// SweepInterval is how often expired records are deleted (they are
	// hidden from reads as soon as they expire). Default 1m.
	SweepInterval time.Duration `yaml:"sweep_interval" desc:"how often expired items are deleted (reads hide them at once)"`
}

// NewDefaultConfig returns a Config with every default set but Path.
func NewDefaultConfig() Config {
	return Config{Durability: DurabilitySync, Readers: 4, CacheSize: 2 * pipeline.Megabyte, MaxBatch: 256, SweepInterval: time.Minute}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, msg string) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", pipeline.ErrInvalid, field, msg))
	}
	if c.Path == "" {
		bad("path", "must be set")
	}
	if c.Durability != DurabilitySync && c.Durability != DurabilityAsync {
		bad("durability", fmt.Sprintf("must be %q or %q, got %q", DurabilitySync, DurabilityAsync, c.Durability))
	}
	if c.Readers < 1 || c.Readers > 256 {
		bad("readers", fmt.Sprintf("must be 1 to 256, got %d", c.Readers))
	}
	if c.CacheSize < 64*pipeline.Kilobyte || c.CacheSize > 64*pipeline.Gigabyte {
		bad("cache_size", fmt.Sprintf("must be 64KB to 64GB, got %s", c.CacheSize))
	}
	if c.MaxBatch < 1 || c.MaxBatch > 100_000 {
		bad("max_batch", fmt.Sprintf("must be 1 to 100000, got %d", c.MaxBatch))
	}
	if c.SweepInterval < time.Second {
		bad("sweep_interval", fmt.Sprintf("must be at least 1s, got %s", c.SweepInterval))
	}
	return errors.Join(errs...)
}
