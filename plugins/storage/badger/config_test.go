package badger

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

func TestDefaultConfigNeedsOnlyPath(t *testing.T) {
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
	if err := checkPlatform(); err != nil {
		t.Fatalf("this build: %v", err)
	}
}
