package badger

import (
	"strconv"
	"strings"
	"testing"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/iotod/iotod/pipeline"

	"github.com/iotod/iotod/pipeline/plugintest"
)

// TestConfigValidate runs the config files of testdata/config through the
// shared config-file check.
func TestConfigValidate(t *testing.T) {
	needBadger(t) // Validate refuses 32-bit builds first
	plugintest.TestConfigFiles(t, "testdata/config/*.yaml", NewFactory())
}

func TestDefaultConfigNeedsOnlyPath(t *testing.T) {
	needBadger(t) // Validate refuses 32-bit builds first
	cfg := NewDefaultConfig()
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("default config: want exactly the path fault, got %v", err)
	}
	cfg.Path = "/data"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config with a path: %v", err)
	}
}

func TestCheckWordSize(t *testing.T) {
	if err := checkWordSize(64); err != nil {
		t.Fatalf("64-bit: %v", err)
	}
	err := checkWordSize(32)
	if err == nil {
		t.Fatal("32-bit platform accepted")
	}
	for _, w := range []string{"32-bit", "64-bit", "corrupts"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("32-bit error %q does not say %q", err, w)
		}
	}
	err = CheckPlatform()
	if strconv.IntSize == 64 && err != nil {
		t.Fatalf("this 64-bit build: %v", err)
	}
	if strconv.IntSize == 32 {
		if err == nil {
			t.Fatal("this 32-bit build: badger accepted")
		}
		cfg := NewDefaultConfig()
		cfg.Path = t.TempDir()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "64-bit") {
			t.Fatalf("this 32-bit build: Validate = %v, want the platform refused", err)
		}
	}
}

func TestMemoryDerivesSizes(t *testing.T) {
	needBadger(t) // Validate refuses 32-bit builds first
	if got, want := SizesFor(DefaultMemory), (Sizes{MemTableSize: 8 << 20, NumMemtables: 2, BlockCacheSize: 8 << 20,
		IndexCacheSize: 4 << 20, ValueLogFileSize: 64 << 20}); got != want {
		t.Fatalf("SizesFor(64MB) = %+v, want %+v (the former defaults)", got, want)
	}
	cfg := NewDefaultConfig()
	cfg.Path, cfg.Memory = "/data", 32<<20
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := cfg.resolved()
	if r.MemTableSize != 4<<20 || r.BlockCacheSize != 4<<20 || r.IndexCacheSize != 2<<20 || r.ValueLogFileSize != 32<<20 {
		t.Fatalf("memory 32MB resolved to %+v", r)
	}
	small := SizesFor(MinMemory)
	if small.MemTableSize < minMemTableSize || small.ValueLogFileSize < minValueLogFileSize {
		t.Fatalf("SizesFor(MinMemory) = %+v below the minimums", small)
	}
}

// TestOptionsOpen: the options for another badger database open one, at
// the smallest budget too.
func TestOptionsOpen(t *testing.T) {
	needBadger(t)
	for _, m := range []pipeline.ByteSize{MinMemory, 16 * pipeline.Megabyte, DefaultMemory} {
		db, err := badgerdb.Open(Options(t.TempDir(), m).WithLogger(nil))
		if err != nil {
			t.Fatalf("memory %s: %v", m, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
