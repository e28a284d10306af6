package external

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"google.golang.org/grpc"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

// NewTransportFactory returns the factory of external transports.
func NewTransportFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindTransport, TypeName,
		"a transport in a process of its own (a binary built with pipeline/sdk)", NewDefaultConfig,
		func(ctx context.Context, set pipeline.Settings, c Config) (any, error) {
			p, err := open(ctx, set, c)
			if err != nil {
				return nil, err
			}
			return &Transport{p: p, closing: make(chan struct{})}, nil
		})
}

// Transport is an external transport: Publish is a call to the plugin,
// each subscription a stream on which the plugin sends messages and iotod
// sends back each one's ack or nack. When the plugin dies, its streams
// break: a subscription's channel stays open and the subscription is
// made again in the restarted plugin (messages not acked before are the
// plugin's transport's to deliver again; the framework resends what is
// never acknowledged).
type Transport struct {
	p *process

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	pumps   sync.WaitGroup
}

// MaxPayload is the plugin transport's maximum payload (0: none said).
func (t *Transport) MaxPayload() int {
	t.p.mu.Lock()
	defer t.p.mu.Unlock()
	return t.p.maxPayload
}

// Connected asks the plugin whether its transport is connected; a plugin
// that is down or does not say counts as not connected.
func (t *Transport) Connected() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var connected bool
	err := t.p.call(ctx, func(ctx context.Context, c *sdk.Client) error {
		var err error
		connected, _, err = c.Connected(ctx)
		return err
	})
	return err == nil && connected
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Publish has the plugin publish msg.
func (t *Transport) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	if t.isClosed() {
		return fmt.Errorf("plugin %s: publish: %w", t.p.name, pipeline.ErrClosed)
	}
	if site == "" {
		return pipeline.Permanent(fmt.Errorf("%w: plugin %s: publish to %s: no site", pipeline.ErrInvalid, t.p.name, ch))
	}
	req := &sdk.PublishRequest{Channel: ch, Site: site, UUID: msg.UUID, Metadata: msg.Metadata, Payload: msg.Payload}
	return t.p.call(ctx, func(ctx context.Context, c *sdk.Client) error { return c.Publish(ctx, req) })
}

// Subscribe makes the subscription in the plugin. A refusal by the
// plugin (a permanent error) fails it; a plugin that is down or
// restarting does not: the channel is returned and the subscription made
// once the plugin is back.
func (t *Transport) Subscribe(ctx context.Context, ch pipeline.Channel, site string) (<-chan *message.Message, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, fmt.Errorf("plugin %s: subscribe to %s: %w", t.p.name, ch, pipeline.ErrClosed)
	}
	t.pumps.Add(1)
	t.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stream, err := t.subscribe(ctx, ch, site)
	if err != nil && (pipeline.IsPermanent(err) || ctx.Err() != nil) {
		cancel()
		t.pumps.Done()
		return nil, fmt.Errorf("plugin %s: subscribe to %s for %q: %w", t.p.name, ch, site, err)
	}
	out := make(chan *message.Message)
	go func() {
		defer t.pumps.Done()
		defer cancel()
		defer close(out)
		t.pump(ctx, ch, site, stream, out)
	}()
	return out, nil
}

// subscribe opens a subscription stream in the plugin, ended with ctx or
// the transport's close.
func (t *Transport) subscribe(ctx context.Context, ch pipeline.Channel, site string) (*subStream, error) {
	rpc, err := t.p.clientFor(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-t.closing:
			cancel()
		case <-sctx.Done():
		}
	}()
	s, err := rpc.Subscribe(sctx, ch, site)
	if err != nil {
		cancel()
		return nil, callError(err)
	}
	return &subStream{s: s, ctx: sctx, cancel: cancel}, nil
}

// pump hands the stream's messages on until ctx ends or the transport
// closes, making the subscription again whenever the stream breaks.
func (t *Transport) pump(ctx context.Context, ch pipeline.Channel, site string, s *subStream, out chan<- *message.Message) {
	delay := t.p.cfg.RestartDelay
	for {
		if s != nil {
			s.deliver(out, t.closing)
			s.cancel()
			delay = t.p.cfg.RestartDelay
		}
		select {
		case <-ctx.Done():
			return
		case <-t.closing:
			return
		case <-time.After(delay):
		}
		var err error
		if s, err = t.subscribe(ctx, ch, site); err != nil {
			s = nil
			delay = min(2*delay, 10*time.Second)
			if pipeline.IsPermanent(err) && !errors.Is(err, pipeline.ErrClosed) {
				t.p.log.Warn("plugin transport refuses a subscription; trying again", "plugin", t.p.name, "channel", ch, "site", site, "err", err)
			}
		}
	}
}

// subStream is one Subscribe stream.
type subStream struct {
	s      grpc.ClientStream
	ctx    context.Context
	cancel context.CancelFunc
	sendMu sync.Mutex // a stream's sends are not safe concurrently
}

// deliver sends each message the plugin delivers to out, and each one's
// ack or nack back, until the stream ends.
func (s *subStream) deliver(out chan<- *message.Message, closing <-chan struct{}) {
	for {
		var d sdk.Delivery
		if err := s.s.RecvMsg(&d); err != nil {
			return
		}
		if d.N == 0 {
			continue // a second Ready: nothing to hand on
		}
		m := message.NewMessage(d.UUID, d.Payload)
		if d.Metadata != nil {
			m.Metadata = d.Metadata
		}
		select {
		case out <- m:
		case <-s.ctx.Done():
			return
		case <-closing:
			return
		}
		go s.settle(m, d.N)
	}
}

// settle sends m's ack or nack to the plugin. Once the stream is gone
// there is no one to tell: the plugin nacked what was pending then.
func (s *subStream) settle(m *message.Message, n uint64) {
	var ack bool
	select {
	case <-m.Acked():
		ack = true
	case <-m.Nacked():
	case <-s.ctx.Done():
		return
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	_ = s.s.SendMsg(&sdk.SubscribeFrame{N: n, Ack: ack})
}

// Close ends every subscription and stops the plugin; it is safe to
// call twice.
func (t *Transport) Close(context.Context) error {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.closing)
	}
	t.mu.Unlock()
	t.pumps.Wait()
	t.p.close()
	return nil
}

var (
	_ pipeline.Transport      = (*Transport)(nil)
	_ pipeline.PayloadLimiter = (*Transport)(nil)
)
