package inproc

import (
	"context"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the transport type of this plugin in configuration.
const TypeName = "inproc"

// NewFactory returns the factory of inproc transports.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindTransport, TypeName,
		"in-process transport (watermill gochannel) between pipelines of one process, for tests and demos",
		NewDefaultConfig, create)
}

// create returns a *Transport. It registers the transport's metrics with
// set.Metrics.
func create(ctx context.Context, set pipeline.Settings, c Config) (any, error) {
	t, err := New(c)
	if err != nil {
		return nil, err
	}
	if set.Metrics != nil {
		if err := set.Metrics.Register(t.dropped); err != nil {
			_ = t.Close(ctx)
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return t, nil
}
