package batch

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
)

func TestConfigTable(t *testing.T) {
	data, err := os.ReadFile("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name string `yaml:"name"`
		YAML string `yaml:"yaml"`
		Want *struct {
			Delay time.Duration     `yaml:"delay"`
			Limit pipeline.ByteSize `yaml:"limit"`
			Count int               `yaml:"count"`
		} `yaml:"want"`
		Err string `yaml:"err"`
	}
	if err := yaml.Unmarshal(data, &cases); err != nil {
		t.Fatalf("testdata/config.yaml: %v", err)
	}
	if len(cases) < 10 {
		t.Fatalf("testdata/config.yaml: only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			if (tc.Want == nil) == (tc.Err == "") {
				t.Fatal("a case needs want or err, not both")
			}
			cfg := NewDefaultConfig()
			dec := yaml.NewDecoder(bytes.NewReader([]byte(tc.YAML)))
			dec.KnownFields(true)
			err := dec.Decode(cfg)
			if err == nil {
				err = cfg.Validate()
				if err != nil && !errors.Is(err, pipeline.ErrInvalid) {
					t.Errorf("Validate error %v does not wrap ErrInvalid", err)
				}
			}
			if tc.Err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.Err) {
					t.Fatalf("got error %v, want one containing %q", err, tc.Err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if cfg.Delay != tc.Want.Delay || cfg.Limit != tc.Want.Limit || cfg.Count != tc.Want.Count {
				t.Errorf("got delay %s limit %s count %d, want %s %s %d",
					cfg.Delay, cfg.Limit, cfg.Count, tc.Want.Delay, tc.Want.Limit, tc.Want.Count)
			}
		})
	}
}

func TestFactoryRefusesBadConfig(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Count = 0
	_, err := NewFactory().Create(t.Context(), pipeline.Settings{ID: pipeline.ID{Type: TypeName}}, cfg)
	if err == nil || !strings.Contains(err.Error(), "count") {
		t.Fatalf("Create with count 0: %v, want an error naming count", err)
	}
}
