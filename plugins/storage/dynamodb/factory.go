package dynamodb

import (
	"context"
	"errors"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the storage type of this engine in configuration.
const TypeName = "dynamodb"

// NewFactory returns the DynamoDB storage factory. Its default config's
// Table must still be set.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindStorage, TypeName,
		"AWS DynamoDB table holding items as OneTable stores them (cloud side); its stream feeds the down pipelines",
		NewDefaultConfig, create)
}

// create opens a *Store on the table, its layout from the schema; its
// stream's changes from writers outside iotod take the storage's site.
// The stream's metrics (iotod_dynamodb_stream_*) join the process's.
func create(ctx context.Context, set pipeline.Settings, c Config) (any, error) {
	s, err := Open(ctx, c, set.Schema, set.Logger, WithSite(set.Site))
	if err != nil {
		return nil, err
	}
	if s.src != nil && set.Metrics != nil {
		if err := set.Metrics.Register(s.src); err != nil {
			return nil, errors.Join(fmt.Errorf("dynamodb table %q: stream metrics: %w", c.Table, err), s.Close(ctx))
		}
	}
	return s, nil
}
