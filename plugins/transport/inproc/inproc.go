// Package inproc is a pipeline.Transport between pipelines of one process,
// on watermill's gochannel: a device pipeline and a cloud pipeline that
// share a *Transport exchange messages without a broker.
//
// Each channel is one gochannel topic. Every Subscribe gets its own
// gochannel subscription and a pump that keeps the messages for its site
// in a queue and hands them to the consumer one at a time: the next
// message comes after the consumer acks the current one, and a Nack
// delivers the same message again. So messages for one subscription
// arrive in publish order, nacked ones included.
//
// Messages live in memory only. A message published on a channel with no
// subscription for its site is dropped (counted in
// iotod_inproc_dropped_total), as are messages queued for a subscription
// that ends; the framework resends what is not acknowledged in time.
package inproc

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iotod/iotod/pipeline"
)

// Transport is an in-process pipeline.Transport. It is safe for
// concurrent use.
type Transport struct {
	cfg Config
	gc  *gochannel.GoChannel

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	subs    map[pipeline.Channel]map[*subscription]struct{}
	pumps   sync.WaitGroup

	dropped prometheus.Counter
}

// New returns a transport with cfg, which must be valid.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("inproc: config: %w", err)
	}
	return &Transport{
		cfg: cfg,
		// Publish blocks until every gochannel subscriber acks; the pumps
		// ack as soon as they have queued a message, so a Publish returns
		// once the message is queued for every subscription, and two
		// Publish calls in a row are queued in that order.
		gc: gochannel.NewGoChannel(gochannel.Config{
			OutputChannelBuffer:            int64(cfg.Buffer),
			BlockPublishUntilSubscriberAck: true,
		}, watermill.NopLogger{}),
		closing: make(chan struct{}),
		subs:    map[pipeline.Channel]map[*subscription]struct{}{},
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotod_inproc_dropped_total",
			Help: "Messages published on a channel with no subscription for their site.",
		}),
	}, nil
}

// Publish sends a copy of msg on ch for site, with pipeline.MetaSite set
// to site (whatever msg carried there). It waits while a subscription the
// message is for holds Config.Buffer unacked messages, and returns once
// the message is queued for every subscription it is for. msg itself is
// not changed.
func (t *Transport) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	switch {
	case ch == "":
		return fmt.Errorf("%w: inproc publish: empty channel", pipeline.ErrInvalid)
	case site == "":
		return fmt.Errorf("%w: inproc publish on %s: empty site", pipeline.ErrInvalid, ch)
	case msg == nil:
		return fmt.Errorf("%w: inproc publish on %s: nil message", pipeline.ErrInvalid, ch)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("inproc publish on %s for %s: %w", ch, site, err)
	}
	subs, err := t.subscribers(ch, site)
	if err != nil {
		return fmt.Errorf("inproc publish on %s for %s: %w", ch, site, err)
	}
	if len(subs) == 0 {
		t.dropped.Inc()
	}
	for _, s := range subs {
		if err := s.room.wait(ctx, s.ctx.Done(), t.closing, t.cfg.Buffer); err != nil {
			return fmt.Errorf("inproc publish on %s for %s: waiting for room: %w", ch, site, err)
		}
	}
	m := msg.Copy()
	m.Metadata.Set(pipeline.MetaSite, site)
	if err := t.gc.Publish(string(ch), m); err != nil {
		if t.isClosed() {
			err = pipeline.ErrClosed
		}
		return fmt.Errorf("inproc publish on %s for %s: %w", ch, site, err)
	}
	return nil
}

// Subscribe receives the messages on ch for site, and those for
// pipeline.Broadcast; site "" receives every message on ch. Only messages
// published after Subscribe returns are received. The channel closes when
// ctx ends or the transport closes.
func (t *Transport) Subscribe(ctx context.Context, ch pipeline.Channel, site string) (<-chan *message.Message, error) {
	if ch == "" {
		return nil, fmt.Errorf("%w: inproc subscribe: empty channel", pipeline.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("inproc subscribe to %s for %q: %w", ch, site, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &subscription{ch: ch, site: site, ctx: sctx, cancel: cancel, out: make(chan *message.Message)}

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		cancel()
		return nil, fmt.Errorf("inproc subscribe to %s for %q: %w", ch, site, pipeline.ErrClosed)
	}
	t.pumps.Add(1)
	t.mu.Unlock()

	// gochannel calls must not run under t.mu: its Subscribe waits for
	// publishes in flight.
	in, err := t.gc.Subscribe(sctx, string(ch))
	if err != nil {
		cancel()
		t.pumps.Done()
		if t.isClosed() {
			err = pipeline.ErrClosed
		}
		return nil, fmt.Errorf("inproc subscribe to %s for %q: %w", ch, site, err)
	}
	t.mu.Lock()
	if t.subs[ch] == nil {
		t.subs[ch] = map[*subscription]struct{}{}
	}
	t.subs[ch][s] = struct{}{}
	t.mu.Unlock()

	go func() {
		defer t.pumps.Done()
		defer t.unregister(s)
		s.pump(in, t.closing)
	}()
	return s.out, nil
}

// Close closes every subscription and makes further Publish and Subscribe
// calls fail with pipeline.ErrClosed. Messages not acked yet are dropped.
// It waits for the subscriptions to end or ctx to end; a second Close
// returns nil at once.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.closing)
	t.mu.Unlock()

	if err := t.gc.Close(); err != nil {
		return fmt.Errorf("inproc close: %w", err)
	}
	done := make(chan struct{})
	go func() {
		t.pumps.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("inproc close: waiting for subscriptions: %w", ctx.Err())
	}
}

// subscribers lists the live subscriptions on ch that want site.
func (t *Transport) subscribers(ch pipeline.Channel, site string) ([]*subscription, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, pipeline.ErrClosed
	}
	var out []*subscription
	for s := range t.subs[ch] {
		if s.wants(site) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (t *Transport) unregister(s *subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.subs[s.ch], s)
	if len(t.subs[s.ch]) == 0 {
		delete(t.subs, s.ch)
	}
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

var _ pipeline.Transport = (*Transport)(nil)
