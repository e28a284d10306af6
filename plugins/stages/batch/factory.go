package batch

import (
	"context"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the stage type in configuration.
const TypeName = "batch"

// NewFactory returns the batch stage factory; it makes *Batcher values
// (pipeline.Batcher).
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindStage, TypeName,
		"holds changes, keeping the latest per key, and cuts batches at delay, byte limit or count",
		func() Config { return *NewDefaultConfig() },
		func(_ context.Context, set pipeline.Settings, c Config) (any, error) { return New(c, set.Site), nil })
}
