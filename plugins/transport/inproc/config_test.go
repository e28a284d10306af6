package inproc

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
