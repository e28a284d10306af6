package badger

import (
	"errors"
	"fmt"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// Durability modes.
const (
	// DurabilitySync makes Update return only after its writes are fsynced
	// (group commit: concurrent writers share one fsync).
	DurabilitySync = "sync"
	// DurabilityAsync makes Update return after commit, without waiting for
	// an fsync; a power cut may lose the last writes, a process crash not.
	DurabilityAsync = "async"
)

const (
	mib = 1 << 20

	minMemTableSize     = 1 * mib
	minValueLogFileSize = 1 * mib
	maxValueLogFileSize = 2<<30 - 1
)

// Config is the user configuration of a badger store.
type Config struct {
	// Path is the directory holding the database. Required.
	Path string `yaml:"path" desc:"folder of the database, relative to the config file's folder (required)"`
	// Durability is "sync" (default: an update returns only after its
	// writes are on disk) or "async" (an update returns after commit
	// without waiting for an fsync).
	Durability string `yaml:"durability" desc:"sync: an update returns once its writes are on disk (group commit); async: once committed, without waiting for the disk"`
	// MemTableSize is the size in bytes of one in-memory write table and of
	// its write-ahead log; at least 1 MiB. Default 8 MiB. It also bounds one
	// transaction to about 15% of it.
	MemTableSize int64 `yaml:"mem_table_size" desc:"bytes of one in-memory write table and its write-ahead log, at least 1 MiB; bounds one transaction to about 15% of it"`
	// NumMemtables is how many write tables may be in memory at once,
	// the active one and those waiting to be flushed; at least 1. Default 2.
	NumMemtables int `yaml:"num_memtables" desc:"write tables in memory at once (the active one and those being flushed), at least 1"`
	// BlockCacheSize is the size in bytes of the cache of decompressed data
	// blocks. Default 8 MiB. Zero disables the cache and compression.
	BlockCacheSize int64 `yaml:"block_cache_size" desc:"bytes of the cache of decompressed data blocks; 0 disables the cache and compression"`
	// IndexCacheSize is the size in bytes of the cache of table indexes and
	// bloom filters. Default 4 MiB. Zero keeps every index in memory
	// unbounded.
	IndexCacheSize int64 `yaml:"index_cache_size" desc:"bytes of the cache of table indexes and bloom filters; 0 keeps every index in memory, unbounded"`
	// ValueLogFileSize is the size in bytes of one value log file, which
	// holds values too large to keep in the tables; between 1 MiB and
	// 2 GiB - 1. Default 64 MiB.
	ValueLogFileSize int64 `yaml:"value_log_file_size" desc:"bytes of one value log file (values too large for the tables), 1 MiB to 2 GiB - 1"`
	// SweepInterval is how often expired (TTL) records are deleted. Expired
	// records are invisible at once; the sweep reclaims their space.
	// Default 1m.
	SweepInterval time.Duration `yaml:"sweep_interval" desc:"how often expired (TTL) records are deleted; they are invisible at once, the sweep reclaims their space"`

	_ struct{}
}

// NewDefaultConfig returns the defaults, sized for a small device: about
// 40 MiB of memory at most. Path is left empty and must be set.
func NewDefaultConfig() Config {
	return Config{
		Durability:       DurabilitySync,
		MemTableSize:     8 * mib,
		NumMemtables:     2,
		BlockCacheSize:   8 * mib,
		IndexCacheSize:   4 * mib,
		ValueLogFileSize: 64 * mib,
		SweepInterval:    time.Minute,
	}
}

// Validate reports every fault of c, each naming its field. The faults
// wrap pipeline.ErrInvalid.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, invalidField("path", "must be set"))
	}
	if c.Durability != DurabilitySync && c.Durability != DurabilityAsync {
		errs = append(errs, invalidField("durability", fmt.Sprintf("must be %q or %q, got %q",
			DurabilitySync, DurabilityAsync, c.Durability)))
	}
	if c.MemTableSize < minMemTableSize {
		errs = append(errs, invalidField("mem_table_size", fmt.Sprintf("must be at least %d (1 MiB), got %d",
			minMemTableSize, c.MemTableSize)))
	}
	if c.NumMemtables < 1 {
		errs = append(errs, invalidField("num_memtables", fmt.Sprintf("must be at least 1, got %d", c.NumMemtables)))
	}
	if c.BlockCacheSize < 0 {
		errs = append(errs, invalidField("block_cache_size", fmt.Sprintf("must not be negative, got %d", c.BlockCacheSize)))
	}
	if c.IndexCacheSize < 0 {
		errs = append(errs, invalidField("index_cache_size", fmt.Sprintf("must not be negative, got %d", c.IndexCacheSize)))
	}
	if c.ValueLogFileSize < minValueLogFileSize || c.ValueLogFileSize > maxValueLogFileSize {
		errs = append(errs, invalidField("value_log_file_size", fmt.Sprintf("must be between %d (1 MiB) and %d, got %d",
			minValueLogFileSize, maxValueLogFileSize, c.ValueLogFileSize)))
	}
	if c.SweepInterval <= 0 {
		errs = append(errs, invalidField("sweep_interval", fmt.Sprintf("must be positive, got %s", c.SweepInterval)))
	}
	return errors.Join(errs...)
}

// fieldError is a fault of one config field.
type fieldError struct{ field, msg string }

func invalidField(field, msg string) error { return fieldError{field: field, msg: msg} }

func (e fieldError) Error() string { return e.field + ": " + e.msg }
func (e fieldError) Unwrap() error { return pipeline.ErrInvalid }
