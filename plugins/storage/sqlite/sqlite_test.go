package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

func opener(durability string) func(t *testing.T, dir string) pipeline.Store {
	return func(t *testing.T, dir string) pipeline.Store {
		cfg := NewDefaultConfig()
		cfg.Path, cfg.Durability = filepath.Join(dir, "iotod.db"), durability
		s, err := Open(t.Context(), cfg, nil)
		if err != nil {
			t.Fatalf("open %s: %v", dir, err)
		}
		return s
	}
}

func TestStoreConformance(t *testing.T)      { plugintest.TestStore(t, opener(DurabilitySync)) }
func TestStoreConformanceAsync(t *testing.T) { plugintest.TestStore(t, opener(DurabilityAsync)) }
