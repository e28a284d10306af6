package sqlite

import (
	"context"
	"path/filepath"

	"github.com/iotod/iotod/pipeline"
)

// NewFactory returns the SQLite storage factory. Its default config's
// Path must still be set.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindStorage, TypeName,
		"embedded crash-safe store on one SQLite file (pure Go: 32-bit devices too) with group commit and an atomic outbox",
		NewDefaultConfig, create)
}

// create opens a *Store; a relative path is taken from set.Dir.
func create(ctx context.Context, set pipeline.Settings, c Config) (any, error) {
	if c.Path != "" && !filepath.IsAbs(c.Path) && set.Dir != "" {
		c.Path = filepath.Join(set.Dir, c.Path)
	}
	return Open(ctx, c, set.Logger)
}
