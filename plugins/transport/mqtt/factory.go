package mqtt

import (
	"context"
	"errors"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the transport type of this plugin in configuration.
const TypeName = "mqtt"

// NewFactory returns the factory of mqtt transports.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindTransport, TypeName,
		"MQTT v5 transport (QoS 1, persistent session, shared subscriptions, TLS and mutual TLS, AWS IoT Core)",
		NewDefaultConfig, create)
}

// create returns a *Transport, connecting in the background. It registers
// the transport's metrics with set.Metrics.
func create(ctx context.Context, set pipeline.Settings, c Config) (any, error) {
	t, err := New(c, set)
	if err != nil {
		return nil, err
	}
	if set.Metrics != nil {
		if err := t.metrics.register(set.Metrics); err != nil {
			return nil, errors.Join(fmt.Errorf("register metrics: %w", err), t.Close(ctx))
		}
	}
	return t, nil
}

// MaxPayload is the largest payload this transport publishes; receivers
// refuse larger batches, which a well-behaved sender never sends.
func (t *Transport) MaxPayload() int { return int(t.cfg.MaxPayload) }

var _ pipeline.PayloadLimiter = (*Transport)(nil)
