package mqtt

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
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

// TestConfigValidate runs the config files of testdata/config through the
// shared config-file check.
func TestConfigValidate(t *testing.T) {
	plugintest.TestConfigFiles(t, "testdata/config/*.yaml", NewFactory())
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
