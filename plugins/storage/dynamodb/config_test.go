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

func TestDefaultConfigNeedsOnlyTable(t *testing.T) {
	cfg := NewDefaultConfig()
	if !cfg.ConsistentRead {
		t.Fatal("consistent_read is not on by default")
	}
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "table") {
		t.Fatalf("default config: want exactly the table fault, got %v", err)
	}
	cfg.Table = "iotod"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config with a table: %v", err)
	}
}
