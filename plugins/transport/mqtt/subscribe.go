package mqtt

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/iotod/iotod/pipeline"
)

// subscription is one Subscribe call: the MQTT filters it stands on, the
// messages queued for it and the pump that hands them to the consumer.
type subscription struct {
	ch      pipeline.Channel
	site    string
	filters []string
	ctx     context.Context
	cancel  context.CancelFunc
	out     chan *message.Message
	wake    chan struct{} // signalled when the queue grows

	// Guarded by Transport.mu.
	queue  []*item
	byUUID map[string]*item
}

// item is one message queued in a subscription, with the received
// publishes it stands for (a broker may send one message several times:
// once per overlapping subscription, or again after a reconnect).
type item struct {
	msg      *message.Message
	inbounds []*inbound
}

// filterRef counts the subscriptions standing on one MQTT filter; timer
// is set while the filter waits to be unsubscribed.
type filterRef struct {
	refs  int
	timer *time.Timer
}

// wants reports whether a message on ch for site is for s.
func (s *subscription) wants(ch pipeline.Channel, site string) bool {
	if ch != s.ch {
		return false
	}
	return s.site == "" || site == s.site || (ch == pipeline.ChanDown && site == pipeline.Broadcast)
}

// push queues m for s, or adds in to the queued item of the same UUID.
// The caller holds Transport.mu and has counted s in in.refs.
func (s *subscription) push(in *inbound, m *message.Message) {
	if it := s.byUUID[m.UUID]; it != nil {
		it.inbounds = append(it.inbounds, in)
		return
	}
	it := &item{msg: m, inbounds: []*inbound{in}}
	s.queue = append(s.queue, it)
	s.byUUID[m.UUID] = it
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// filtersFor lists the MQTT filters a subscription to ch for site needs.
func (t *Transport) filtersFor(ch pipeline.Channel, site string) []string {
	if site == "" {
		f := t.topics.topic(ch, "+")
		// Work is shared among the workers; acks are not: each worker must
		// hear the acks of the batches it sent (it ignores the others).
		if t.cfg.ShareGroup != "" && !isAck(ch) {
			f = "$share/" + t.cfg.ShareGroup + "/" + f
		}
		return []string{f}
	}
	fs := []string{t.topics.topic(ch, site)}
	if ch == pipeline.ChanDown && site != pipeline.Broadcast {
		fs = append(fs, t.topics.topic(ch, pipeline.Broadcast))
	}
	return fs
}

func isAck(ch pipeline.Channel) bool {
	return ch == pipeline.ChanUpAck || ch == pipeline.ChanDownAck
}

// Subscribe receives the messages on ch for site (on the down channel,
// pipeline.Broadcast's too); site "" receives every site's, through a
// shared subscription when share_group is set (except on the ack
// channels, which every subscriber hears whole). It returns once the broker
// has acknowledged the subscription, or after connect_timeout while the
// transport is not connected (it then subscribes on connection). Messages
// the broker kept in the session for this client that fit the
// subscription come first. The channel closes when ctx ends or the
// transport closes.
func (t *Transport) Subscribe(ctx context.Context, ch pipeline.Channel, site string) (<-chan *message.Message, error) {
	if !knownChannel(ch) {
		return nil, fmt.Errorf("%w: mqtt subscribe: unknown channel %q", pipeline.ErrInvalid, ch)
	}
	if site != "" {
		if err := validLevel(site); err != nil {
			return nil, fmt.Errorf("%w: mqtt subscribe to %s: site %v", pipeline.ErrInvalid, ch, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mqtt subscribe to %s for %q: %w", ch, site, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &subscription{ch: ch, site: site, filters: t.filtersFor(ch, site), ctx: sctx, cancel: cancel,
		out: make(chan *message.Message), wake: make(chan struct{}, 1), byUUID: map[string]*item{}}

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		cancel()
		return nil, fmt.Errorf("mqtt subscribe to %s for %q: %w", ch, site, pipeline.ErrClosed)
	}
	t.subs[s] = struct{}{}
	for _, f := range s.filters {
		ref := t.filters[f]
		if ref == nil {
			ref = &filterRef{}
			t.filters[f] = ref
		}
		ref.refs++
		if ref.timer != nil {
			ref.timer.Stop()
			ref.timer = nil
		}
	}
	t.claimLocked(s)
	t.pumps.Add(1)
	t.mu.Unlock()
	go t.pump(s)

	if err := t.subscribeFilters(s); err != nil {
		cancel()
		return nil, fmt.Errorf("mqtt subscribe to %s for %q: %w", ch, site, err)
	}
	return s.out, nil
}

// subscribeFilters sends s's SUBSCRIBE once the transport is ready,
// waiting at most connect_timeout for that; past it, or at once when a
// connection attempt fails or has failed (the broker is unreachable: an
// offline device must not wait connect_timeout per subscription), a
// goroutine subscribes when the connection comes.
func (t *Transport) subscribeFilters(s *subscription) error {
	wctx, cancel := context.WithTimeout(s.ctx, t.cfg.ConnectTimeout)
	defer cancel()
	for {
		if err := t.awaitReadyOr(wctx, true); err != nil {
			if s.ctx.Err() != nil || t.isClosed() {
				return err
			}
			t.log.Info("mqtt not connected; subscribing when the connection comes", "filters", s.filters)
			go t.subscribeLater(s)
			return nil
		}
		err := t.subscribe(s.ctx, t.cm, s.filters)
		if err == nil || !connectionDown(err) {
			return err
		}
		select { // the connection dropped: wait for the next one
		case <-time.After(ackInterval):
		case <-s.ctx.Done():
		}
	}
}

// subscribeLater subscribes s once ready, until s or the transport ends.
func (t *Transport) subscribeLater(s *subscription) {
	for t.awaitReady(s.ctx) == nil {
		err := t.subscribe(s.ctx, t.cm, s.filters)
		if err == nil || !connectionDown(err) {
			if err != nil {
				t.log.Warn("mqtt subscribe failed", "filters", s.filters, "err", err)
			}
			return
		}
	}
}

// reasonIDInUse is the SUBACK reason "packet identifier in use".
const reasonIDInUse = 0x91

// subscribe subscribes to filters with QoS 1. mochi v2.7 keeps the packet
// ids of the client and of the server in one map, so it refuses a
// SUBSCRIBE whose id equals one of its own deliveries still unacked (0x91,
// likely right after a restart, when it resends the session's messages):
// that is tried again, with the next id.
func (t *Transport) subscribe(ctx context.Context, cm *autopaho.ConnectionManager, filters []string) error {
	for range 32 {
		sa, err := cm.Subscribe(ctx, subscribePacket(filters))
		if err == nil {
			return nil
		}
		if sa == nil || !onlyIDInUse(sa.Reasons) {
			if sa != nil {
				return fmt.Errorf("filters %q: reason codes %v: %w", filters, sa.Reasons, err)
			}
			return err
		}
	}
	return fmt.Errorf("filters %q: the broker kept answering \"packet identifier in use\"", filters)
}

// onlyIDInUse reports whether every failing reason code is 0x91.
func onlyIDInUse(reasons []byte) bool {
	for _, r := range reasons {
		if r >= 0x80 && r != reasonIDInUse {
			return false
		}
	}
	return true
}

// subscribePacket subscribes to filters with QoS 1.
func subscribePacket(filters []string) *paho.Subscribe {
	sp := &paho.Subscribe{Subscriptions: make([]paho.SubscribeOptions, len(filters))}
	for i, f := range filters {
		sp.Subscriptions[i] = paho.SubscribeOptions{Topic: f, QoS: 1}
	}
	return sp
}

// liveFilters lists the filters some subscription stands on. The caller
// holds t.mu.
func (t *Transport) liveFilters() []string {
	var out []string
	for f, ref := range t.filters {
		if ref.refs > 0 {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}
