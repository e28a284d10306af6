package badger

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
)

// TestConfigValidate decodes each testdata/config/*.yaml over the defaults
// (unknown keys rejected) and validates it. Each file lists the error
// substrings it expects in "# want:" lines, or "# want: ok".
func TestConfigValidate(t *testing.T) {
	files, err := filepath.Glob("testdata/config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no config testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for line := range strings.Lines(string(data)) {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, strings.TrimSpace(w))
				}
			}
			if len(wants) == 0 {
				t.Fatal(`no "# want:" line`)
			}
			cfg := NewDefaultConfig()
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			err = dec.Decode(&cfg)
			if err == nil {
				err = cfg.Validate()
				if err != nil && !errors.Is(err, pipeline.ErrInvalid) {
					t.Errorf("validate error %v does not wrap ErrInvalid", err)
				}
			}
			if wants[0] == "ok" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want errors %q, got none", wants)
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
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
