package dynamodb

import (
	"strings"
	"testing"

	"github.com/iotod/iotod/pipeline/plugintest"
)

// TestConfigValidate runs the config files of testdata/config through the
// shared config-file check.
func TestConfigValidate(t *testing.T) {
	plugintest.TestConfigFiles(t, "testdata/config/*.yaml", NewFactory())
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := NewDefaultConfig()
	if !cfg.ConsistentRead || !cfg.Stream {
		t.Fatal("consistent_read and stream are not on by default")
	}
	if cfg.Table != DefaultTable {
		t.Fatalf("default table %q, want %q", cfg.Table, DefaultTable)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg.Table = ""
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "table") {
		t.Fatalf("no table: want the table fault, got %v", err)
	}
}
