package dynamodb

import (
	"context"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the storage type of this engine in configuration.
const TypeName = "dynamodb"

// NewFactory returns the DynamoDB storage factory. Its default config's
// Table must still be set. The factory is not registered in iotod yet: the
// store cannot feed its changes down (no stream source), see
// docs/dynamodb.md.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindStorage, TypeName,
		"AWS DynamoDB table holding items as OneTable stores them (cloud side; no change feed yet)",
		NewDefaultConfig, create)
}

// create opens a *Store on the table, its layout from the schema.
func create(ctx context.Context, set pipeline.Settings, c Config) (any, error) {
	return Open(ctx, c, set.Schema, set.Logger)
}
