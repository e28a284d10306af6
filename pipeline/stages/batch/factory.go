package batch

import (
	"context"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the stage type in configuration.
const TypeName = "batch"

// Factory makes batchers.
type Factory struct{}

// NewFactory returns the batch stage factory.
func NewFactory() pipeline.Factory { return Factory{} }

// Kind returns pipeline.KindStage.
func (Factory) Kind() pipeline.Kind { return pipeline.KindStage }

// Type returns TypeName.
func (Factory) Type() string { return TypeName }

// Description is one line for `iotod plugins list`.
func (Factory) Description() string {
	return "holds changes, keeping the latest per key, and cuts batches at delay, byte limit or count"
}

// NewDefaultConfig returns NewDefaultConfig().
func (Factory) NewDefaultConfig() pipeline.Config { return NewDefaultConfig() }

// Create returns a *Batcher (a pipeline.Batcher).
func (Factory) Create(_ context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("%s: config is %T, want *batch.Config", set.ID, cfg)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", set.ID, err)
	}
	return New(*c, set.Site), nil
}

var _ pipeline.Factory = Factory{}
