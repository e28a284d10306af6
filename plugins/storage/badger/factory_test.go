package badger

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/iotod/iotod/pipeline"
)

func TestFactory(t *testing.T) {
	needBadger(t)
	f := NewFactory()
	if f.Kind() != pipeline.KindStorage || f.Type() != "badger" || f.Description() == "" {
		t.Fatalf("kind %q type %q description %q", f.Kind(), f.Type(), f.Description())
	}
	cfg, ok := f.NewDefaultConfig().(*Config)
	if !ok || *cfg != NewDefaultConfig() {
		t.Fatalf("default config %#v", f.NewDefaultConfig())
	}
	dir := t.TempDir()
	set := pipeline.Settings{ID: pipeline.ID{Type: "badger", Name: "local"}, Dir: dir}
	if _, err := f.Create(t.Context(), set, cfg); !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("create without a path: %v", err)
	}
	if _, err := f.Create(t.Context(), set, NewDefaultConfig()); !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("create with a Config value, not a pointer: %v", err)
	}

	// A relative path is taken from the config's folder, and the config
	// is left as it was.
	cfg.Path = "data/device"
	s, err := f.Create(t.Context(), set, cfg)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, ok := s.(pipeline.Store); !ok {
		t.Fatalf("created a %T, not a pipeline.Store", s)
	}
	if err := s.(pipeline.Store).Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "device")); err != nil {
		t.Fatalf("store not in the config's folder: %v", err)
	}
	if cfg.Path != "data/device" {
		t.Fatalf("Create changed the config: path %q", cfg.Path)
	}
}
