package badger

import (
	"context"
	"path/filepath"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the storage type of this engine in configuration.
const TypeName = "badger"

// NewFactory returns the badger storage factory. Its default config's Path
// must still be set.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindStorage, TypeName,
		"embedded crash-safe store (badger v4) with group commit and an atomic outbox",
		NewDefaultConfig, create)
}

// create opens a *Store; a relative path is taken from set.Dir. Its errors
// name the store's path.
func create(ctx context.Context, set pipeline.Settings, c Config) (any, error) {
	if c.Path != "" && !filepath.IsAbs(c.Path) && set.Dir != "" {
		c.Path = filepath.Join(set.Dir, c.Path)
	}
	return Open(ctx, c, set.Logger)
}
