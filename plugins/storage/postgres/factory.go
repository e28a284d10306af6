package postgres

import (
	"context"

	"github.com/iotod/iotod/pipeline"
)

// NewFactory returns the PostgreSQL storage factory. Its default
// config's URL must still be set.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindStorage, TypeName,
		"PostgreSQL 15+ schema holding items, index entries and an outbox in commit order (cloud side; several workers may share it)",
		NewDefaultConfig, create)
}

// create opens a *Store.
func create(ctx context.Context, set pipeline.Settings, c Config) (any, error) {
	return Open(ctx, c, set.Logger)
}
