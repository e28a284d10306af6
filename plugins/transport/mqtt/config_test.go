package mqtt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
)

// decodeConfig decodes data over the defaults, unknown keys rejected,
// and validates it.
func decodeConfig(data []byte) (Config, error) {
	cfg := NewDefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// TestConfigValidate decodes each testdata/config/*.yaml and validates it.
// Each file lists the error substrings it expects in "# want:" lines, or
// "# want: ok".
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
			_, err = decodeConfig(data)
			if wants[0] == "ok" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want errors %q, got none", wants)
			}
			if !strings.Contains(err.Error(), "not found") && !errors.Is(err, pipeline.ErrInvalid) {
				t.Errorf("validate error %v does not wrap ErrInvalid", err)
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
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if cfg.URL != "mqtt://127.0.0.1:1883" || cfg.Topic != "iotod/{site}/{channel}" || cfg.ShareGroup != "iotod" ||
		cfg.MaxPayload != 128*pipeline.Kilobyte || cfg.CleanStart {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
	if _, err := New(Config{}, pipeline.Settings{Site: "dev"}); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("New with a zero config: got %v, want ErrInvalid", err)
	}
}

// TestReadmeConfigs checks that every yaml block of the README that
// configures an mqtt transport is valid.
func TestReadmeConfigs(t *testing.T) {
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(text), -1)
	n := 0
	for i, b := range blocks {
		var doc struct {
			Transports map[string]yaml.Node `yaml:"transports"`
		}
		if err := yaml.Unmarshal([]byte(b[1]), &doc); err != nil {
			t.Fatalf("README yaml block %d: %v", i+1, err)
		}
		for name, node := range doc.Transports {
			var typ struct {
				Type string `yaml:"type"`
			}
			if err := node.Decode(&typ); err != nil || typ.Type != TypeName {
				continue
			}
			n++
			var raw map[string]any
			if err := node.Decode(&raw); err != nil {
				t.Fatal(err)
			}
			delete(raw, "type")
			data, err := yaml.Marshal(raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeConfig(data); err != nil {
				t.Errorf("README yaml block %d, transport %s: %v", i+1, name, err)
			}
		}
	}
	if n < 2 {
		t.Errorf("README has %d mqtt transport configs, want at least 2", n)
	}
}
