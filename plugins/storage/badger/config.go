package badger

import (
	"errors"
	"fmt"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

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

	// MinMemory and MaxMemory bound the memory key.
	MinMemory = 8 * pipeline.Megabyte
	MaxMemory = 64 * pipeline.Gigabyte
)

// Config is the user configuration of a badger store.
type Config struct {
	// Path is the directory holding the database. Required.
	Path string `yaml:"path" desc:"folder of the database, relative to the config file's folder (required)"`
	// Durability is "sync" (default: an update returns only after its
	// writes are on disk) or "async" (an update returns after commit
	// without waiting for an fsync).
	Durability string `yaml:"durability" desc:"sync: an update returns once its writes are on disk (group commit); async: once committed, without waiting for the disk"`
	// Memory is a budget for badger's own memory (write tables, caches,
	// table builders); zero means the individual sizes below. When set,
	// mem_table_size, num_memtables, block_cache_size, index_cache_size and
	// value_log_file_size are derived from it (see SizesFor) and must be
	// left at their defaults. Between MinMemory and MaxMemory.
	Memory pipeline.ByteSize `yaml:"memory" desc:"memory budget of the store, e.g. 32MB: derives mem_table_size, num_memtables, block_cache_size, index_cache_size and value_log_file_size (leave those unset); 0 uses them as set"`
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

// NewDefaultConfig returns the defaults: the sizes of memory: 64MB (see
// SizesFor). Path is left empty and must be set.
func NewDefaultConfig() Config {
	c := Config{Durability: DurabilitySync, SweepInterval: time.Minute}
	c.setSizes(SizesFor(DefaultMemory))
	return c
}

// DefaultMemory is the budget the default sizes derive from.
const DefaultMemory = 64 * pipeline.Megabyte

// Sizes are the memory sizes of a store, in bytes.
type Sizes struct {
	MemTableSize, BlockCacheSize, IndexCacheSize, ValueLogFileSize int64
	NumMemtables                                                   int
}

// SizesFor derives a store's sizes from a memory budget: two write tables
// of an eighth of it each (1 to 64 MiB; with their table builders, flushes
// and compactions, about half the budget), a block cache of an eighth, an
// index cache of a sixteenth, and value log files as large as the budget
// (1 to 64 MiB; memory-mapped, their pages are the kernel's to drop).
func SizesFor(memory pipeline.ByteSize) Sizes {
	m := int64(memory)
	return Sizes{
		MemTableSize:     max(minMemTableSize, min(64*mib, m/8/mib*mib)),
		NumMemtables:     2,
		BlockCacheSize:   m / 8,
		IndexCacheSize:   m / 16,
		ValueLogFileSize: max(minValueLogFileSize, min(64*mib, m/mib*mib)),
	}
}

func (c *Config) setSizes(s Sizes) {
	c.MemTableSize, c.NumMemtables = s.MemTableSize, s.NumMemtables
	c.BlockCacheSize, c.IndexCacheSize, c.ValueLogFileSize = s.BlockCacheSize, s.IndexCacheSize, s.ValueLogFileSize
}

// resolved returns c with its sizes derived from Memory when it is set.
func (c Config) resolved() Config {
	if c.Memory != 0 {
		c.setSizes(SizesFor(c.Memory))
	}
	return c
}

// Validate reports every fault of c, each naming its field. The faults
// wrap pipeline.ErrInvalid.
func (c Config) Validate() error {
	var errs []error
	if err := CheckPlatform(); err != nil {
		errs = append(errs, err)
	}
	if c.Path == "" {
		errs = append(errs, invalidField("path", "must be set"))
	}
	if c.Durability != DurabilitySync && c.Durability != DurabilityAsync {
		errs = append(errs, invalidField("durability", fmt.Sprintf("must be %q or %q, got %q",
			DurabilitySync, DurabilityAsync, c.Durability)))
	}
	if c.Memory != 0 {
		if c.Memory < MinMemory || c.Memory > MaxMemory {
			errs = append(errs, invalidField("memory", fmt.Sprintf("must be between %s and %s, got %s", MinMemory, MaxMemory, c.Memory)))
		}
		def := NewDefaultConfig()
		for _, f := range []struct {
			name     string
			set, def int64
		}{
			{"mem_table_size", c.MemTableSize, def.MemTableSize},
			{"num_memtables", int64(c.NumMemtables), int64(def.NumMemtables)},
			{"block_cache_size", c.BlockCacheSize, def.BlockCacheSize},
			{"index_cache_size", c.IndexCacheSize, def.IndexCacheSize},
			{"value_log_file_size", c.ValueLogFileSize, def.ValueLogFileSize},
		} {
			if f.set != f.def {
				errs = append(errs, invalidField(f.name, "is derived from memory: set one or the other, not both"))
			}
		}
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

// Options are badger options for a database of this memory budget, with the
// sizes SizesFor derives and the same bounds on table builders as a store:
// for another badger database in the process (the broker's persistence),
// so that it too stays within a budget. Badger's default logger is kept.
func Options(dir string, memory pipeline.ByteSize) badgerdb.Options {
	s := SizesFor(memory)
	o := badgerdb.DefaultOptions(dir).
		WithMemTableSize(s.MemTableSize).
		WithNumMemtables(s.NumMemtables).
		WithBlockCacheSize(s.BlockCacheSize).
		WithIndexCacheSize(s.IndexCacheSize).
		WithValueLogFileSize(s.ValueLogFileSize).
		WithValueThreshold(valueThreshold(s.MemTableSize)).
		WithNumCompactors(2).
		WithNumGoroutines(2)
	return boundBuilders(o, s.MemTableSize, s.BlockCacheSize)
}

// valueThreshold keeps values inline in the LSM tree (no value log GC
// debt) up to half of what one transaction may hold (15% of a memtable),
// at most 1 MiB.
func valueThreshold(memTableSize int64) int64 { return min(int64(1<<20), memTableSize*15/100/2) }
