package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/transport/inproc"
)

// maxPayload is the test transport's maximum payload.
const maxPayload = 1024

// transport is an in-process bus in the plugin (one process: one message
// space) that refuses payloads over maxPayload and, in mode crash-once,
// exits on its first Publish while Marker does not exist.
type transport struct {
	*inproc.Transport
	cfg config
}

func newTransport(b []byte) (pipeline.Transport, error) {
	c, err := parse(b)
	if err != nil {
		return nil, err
	}
	bus, err := inproc.New(inproc.NewDefaultConfig())
	if err != nil {
		return nil, err
	}
	return &transport{Transport: bus, cfg: c.cfg}, nil
}

func (t *transport) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	if len(msg.Payload) > maxPayload {
		return fmt.Errorf("%d bytes: %w", len(msg.Payload), pipeline.ErrTooLargeForTransport)
	}
	if t.cfg.Mode == "crash-once" {
		if _, err := os.Stat(t.cfg.Marker); errors.Is(err, os.ErrNotExist) {
			_ = os.WriteFile(t.cfg.Marker, []byte("crashed"), 0o600)
			os.Exit(3)
		}
	}
	return t.Transport.Publish(ctx, ch, site, msg)
}

func (t *transport) MaxPayload() int { return maxPayload }

// Connected: the bus is always connected.
func (t *transport) Connected() bool { return true }
