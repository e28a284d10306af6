package mqtt

import (
	"context"
	"errors"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the transport type of this plugin in configuration.
const TypeName = "mqtt"

type factory struct{}

// NewFactory returns the factory of mqtt transports.
func NewFactory() pipeline.Factory { return factory{} }

func (factory) Kind() pipeline.Kind { return pipeline.KindTransport }

func (factory) Type() string { return TypeName }

func (factory) Description() string {
	return "MQTT v5 transport (QoS 1, persistent session, shared subscriptions, TLS and mutual TLS, AWS IoT Core)"
}

func (factory) NewDefaultConfig() pipeline.Config {
	c := NewDefaultConfig()
	return &c
}

// Create returns a *Transport, connecting in the background. It registers
// the transport's metrics with set.Metrics.
func (factory) Create(ctx context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("%w: mqtt transport %s: config is %T, want *mqtt.Config", pipeline.ErrInvalid, set.ID, cfg)
	}
	t, err := New(*c, set)
	if err != nil {
		return nil, fmt.Errorf("mqtt transport %s: %w", set.ID, err)
	}
	if set.Metrics != nil {
		if err := t.metrics.register(set.Metrics); err != nil {
			return nil, errors.Join(fmt.Errorf("mqtt transport %s: register metrics: %w", set.ID, err), t.Close(ctx))
		}
	}
	return t, nil
}

var _ pipeline.Factory = factory{}
