package inproc

import (
	"errors"
	"testing"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

// TestConfigValidate runs the config files of testdata/config through the
// shared config-file check.
func TestConfigValidate(t *testing.T) {
	plugintest.TestConfigFiles(t, "testdata/config/*.yaml", NewFactory())
}

func TestDefaultConfig(t *testing.T) {
	cfg := NewDefaultConfig()
	if cfg.Buffer != DefaultBuffer {
		t.Errorf("default buffer = %d, want %d", cfg.Buffer, DefaultBuffer)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if _, err := New(Config{}); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("New with a zero config: got %v, want ErrInvalid", err)
	}
}
