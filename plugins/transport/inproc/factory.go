package inproc

import (
	"context"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the transport type of this plugin in configuration.
const TypeName = "inproc"

type factory struct{}

// NewFactory returns the factory of inproc transports.
func NewFactory() pipeline.Factory { return factory{} }

func (factory) Kind() pipeline.Kind { return pipeline.KindTransport }

func (factory) Type() string { return TypeName }

func (factory) Description() string {
	return "in-process transport (watermill gochannel) between pipelines of one process, for tests and demos"
}

func (factory) NewDefaultConfig() pipeline.Config {
	c := NewDefaultConfig()
	return &c
}

// Create returns a *Transport. It registers the transport's metrics with
// set.Metrics.
func (factory) Create(ctx context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("%w: inproc transport %s: config is %T, want *inproc.Config", pipeline.ErrInvalid, set.ID, cfg)
	}
	t, err := New(*c)
	if err != nil {
		return nil, fmt.Errorf("inproc transport %s: %w", set.ID, err)
	}
	if set.Metrics != nil {
		if err := set.Metrics.Register(t.dropped); err != nil {
			_ = t.Close(ctx)
			return nil, fmt.Errorf("inproc transport %s: register metrics: %w", set.ID, err)
		}
	}
	return t, nil
}

var _ pipeline.Factory = factory{}
