package plugintest

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

// TestConfigFiles decodes each file matching glob (e.g.
// "testdata/config/*.yaml") over the factory's default config, unknown keys
// rejected, and validates it. Each file states what it expects in
// "# want: SUBSTRING" lines (every one must be in the error, which must
// wrap pipeline.ErrInvalid unless it is a YAML decoding error), or
// "# want: ok".
func TestConfigFiles(t *testing.T, glob string, f pipeline.Factory) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no config files match %s: %v", glob, err)
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
			cfg := f.NewDefaultConfig()
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			if err = dec.Decode(cfg); err == nil {
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
