package inproc

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

// subscription is one Subscribe call: the messages queued for it and the
// pump that hands them to the consumer.
type subscription struct {
	ch     pipeline.Channel
	site   string
	ctx    context.Context
	cancel context.CancelFunc
	out    chan *message.Message
	room   gate
}

// wants reports whether a message for site is for s.
func (s *subscription) wants(site string) bool {
	return s.site == "" || site == s.site || site == pipeline.Broadcast
}

// pump reads s's gochannel subscription in, queues the messages for s and
// acks every message at once (gochannel gives each subscription its own
// copy, so acking it touches no other subscription). It offers the queue
// head to the consumer, drops it on Ack and offers it again on Nack. It
// returns when in closes, s.ctx ends or closing closes, and then closes
// s.out; whatever is still queued is dropped.
func (s *subscription) pump(in <-chan *message.Message, closing <-chan struct{}) {
	var (
		queue []*message.Message
		// offer is the queue head on offer to the consumer; sent says the
		// consumer has it and it waits for Ack or Nack.
		offer delivery
		sent  bool
	)
	defer func() {
		offer.end()
		s.cancel()
		close(s.out)
	}()
	for {
		var out chan<- *message.Message
		var acked, nacked <-chan struct{}
		switch {
		case sent:
			acked, nacked = offer.msg.Acked(), offer.msg.Nacked()
		case len(queue) > 0:
			if offer.msg == nil {
				offer = s.deliver(queue[0])
			}
			out = s.out
		}
		select {
		case m, ok := <-in:
			if !ok {
				return
			}
			if s.wants(m.Metadata.Get(pipeline.MetaSite)) {
				queue = append(queue, m)
				s.room.add(1)
			}
			m.Ack()
		case out <- offer.msg:
			sent = true
		case <-acked:
			offer.end()
			offer, sent = delivery{}, false
			queue[0] = nil
			queue = queue[1:]
			s.room.add(-1)
		case <-nacked:
			offer.end()
			offer, sent = delivery{}, false
		case <-s.ctx.Done():
			return
		case <-closing:
			return
		}
	}
}

// delivery is one attempt to deliver a queued message: a fresh copy (a
// message acks only once) with its own context, canceled on Ack or Nack
// as watermill's contract says.
type delivery struct {
	msg    *message.Message
	cancel context.CancelFunc
}

func (s *subscription) deliver(m *message.Message) delivery {
	ctx, cancel := context.WithCancel(s.ctx)
	c := m.Copy()
	c.SetContext(ctx)
	return delivery{msg: c, cancel: cancel}
}

func (d delivery) end() {
	if d.cancel != nil {
		d.cancel()
	}
}

// gate counts the messages a subscription holds and lets publishers wait
// for room.
type gate struct {
	mu   sync.Mutex
	n    int
	wake chan struct{} // closed when n drops; nil when nobody waits
}

func (g *gate) add(d int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n += d
	if d < 0 && g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
}

// wait returns nil once fewer than limit messages are held, or when done
// or closing closes (the subscription or the transport has ended, so
// there is nothing to wait for); it returns ctx's error if ctx ends first.
func (g *gate) wait(ctx context.Context, done, closing <-chan struct{}, limit int) error {
	for {
		g.mu.Lock()
		if g.n < limit {
			g.mu.Unlock()
			return nil
		}
		if g.wake == nil {
			g.wake = make(chan struct{})
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			return nil
		case <-closing:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
