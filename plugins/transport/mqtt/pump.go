package mqtt

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/eclipse/paho.golang/paho"
)

// pump offers the head of s's queue to the consumer, drops it on Ack and
// offers it again on Nack. It ends when s.ctx ends or the transport
// closes.
func (t *Transport) pump(s *subscription) {
	defer t.pumps.Done()
	defer t.endSubscription(s)
	for {
		t.mu.Lock()
		var head *item
		if len(s.queue) > 0 {
			head = s.queue[0]
		}
		t.mu.Unlock()
		if head == nil {
			select {
			case <-s.wake:
				continue
			case <-s.ctx.Done():
				return
			case <-t.closing:
				return
			}
		}
		// A fresh copy per attempt (a message acks once), with its own
		// context, canceled on Ack or Nack as watermill's contract says.
		mctx, mcancel := context.WithCancel(s.ctx)
		m := head.msg.Copy()
		m.SetContext(mctx)
		select {
		case s.out <- m:
		case <-s.ctx.Done():
			mcancel()
			return
		case <-t.closing:
			mcancel()
			return
		}
		select {
		case <-m.Acked():
			mcancel()
			t.acked(s, head)
		case <-m.Nacked():
			mcancel()
		case <-s.ctx.Done():
			t.ackedAtEnd(s, head, m)
			mcancel()
			return
		case <-t.closing:
			t.ackedAtEnd(s, head, m)
			mcancel()
			return
		}
	}
}

// ackedAtEnd takes an Ack that came together with the end of s.
func (t *Transport) ackedAtEnd(s *subscription, head *item, m *message.Message) {
	select {
	case <-m.Acked():
		t.acked(s, head)
	default:
	}
}

// acked drops the head item of s and acknowledges the publishes no other
// subscription still holds.
func (t *Transport) acked(s *subscription, head *item) {
	t.mu.Lock()
	s.queue[0] = nil
	s.queue = s.queue[1:]
	if s.byUUID[head.msg.UUID] == head {
		delete(s.byUUID, head.msg.UUID)
	}
	done := t.releaseLocked(head.inbounds)
	t.mu.Unlock()
	t.ackAll(done)
}

// endSubscription closes s's channel, lets go of its filters (after
// releaseWait) and of the messages it held: these are dropped after
// releaseWait too, unless the transport closes first and leaves them to
// the broker's session.
func (t *Transport) endSubscription(s *subscription) {
	s.cancel()
	close(s.out)
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.subs, s)
	held := s.queue
	s.queue, s.byUUID = nil, nil
	if t.closed {
		return
	}
	for _, f := range s.filters {
		ref := t.filters[f]
		ref.refs--
		if ref.refs == 0 {
			ref.timer = time.AfterFunc(t.releaseWait, func() { t.unsubscribe(f, ref) })
		}
	}
	if len(held) > 0 {
		time.AfterFunc(t.releaseWait, func() { t.abandon(held) })
	}
}

// unsubscribe drops filter f if no subscription took it up again.
func (t *Transport) unsubscribe(f string, ref *filterRef) {
	t.mu.Lock()
	if t.closed || t.filters[f] != ref || ref.refs > 0 {
		t.mu.Unlock()
		return
	}
	delete(t.filters, f)
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.PublishTimeout)
	defer cancel()
	if _, err := t.cm.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{f}}); err != nil && !connectionDown(err) {
		t.log.Debug("mqtt unsubscribe failed", "filter", f, "err", err)
	}
}

// abandon acknowledges the messages a subscription held when it ended.
func (t *Transport) abandon(held []*item) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	var done []*inbound
	for _, it := range held {
		done = append(done, t.releaseLocked(it.inbounds)...)
	}
	t.mu.Unlock()
	t.metrics.dropped.WithLabelValues(dropAbandoned).Add(float64(len(held)))
	t.ackAll(done)
}
