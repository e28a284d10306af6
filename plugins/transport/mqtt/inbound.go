package mqtt

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/eclipse/paho.golang/paho"

	"github.com/iotod/iotod/pipeline"
)

// inbound is one PUBLISH received from the broker. Its PUBACK goes out
// once every subscription it was queued for has acked it (refs is 0).
type inbound struct {
	client *paho.Client // the connection it came on
	pub    *paho.Publish
	refs   int
}

// pending is a received message no subscription wanted yet.
type pending struct {
	in    *inbound
	msg   *message.Message
	ch    pipeline.Channel
	site  string
	timer *time.Timer
}

// onPublish queues a received message for every subscription that wants
// it. It runs on paho's receiving goroutine and must not block.
func (t *Transport) onPublish(pr paho.PublishReceived) {
	p := pr.Packet
	in := &inbound{client: pr.Client, pub: p}
	ch, site, ok := t.topics.parse(p.Topic)
	if !ok {
		t.metrics.dropped.WithLabelValues(dropTopic).Inc()
		t.ackAll([]*inbound{in})
		return
	}
	msg, props, ok := toMessage(p, site, t.keep)
	if props > 0 {
		t.metrics.propsDropped.Add(float64(props))
	}
	if !ok {
		t.metrics.dropped.WithLabelValues(dropInvalid).Inc()
		t.ackAll([]*inbound{in})
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return // not acked: the broker sends it again next session
	}
	for s := range t.subs {
		if s.wants(ch, site) {
			in.refs++
			s.push(in, msg)
		}
	}
	if in.refs > 0 {
		return
	}
	// After a restart the broker sends the session's messages before the
	// pipelines subscribe: keep them a while for a subscription to claim.
	pd := &pending{in: in, msg: msg, ch: ch, site: site}
	pd.timer = time.AfterFunc(t.claimWait, func() { t.unclaim(pd) })
	t.unclaimed = append(t.unclaimed, pd)
}

// claimLocked hands s the waiting messages it wants, in the order they
// came. The caller holds t.mu.
func (t *Transport) claimLocked(s *subscription) {
	kept := t.unclaimed[:0]
	for _, pd := range t.unclaimed {
		if !s.wants(pd.ch, pd.site) {
			kept = append(kept, pd)
			continue
		}
		pd.timer.Stop()
		pd.in.refs++
		s.push(pd.in, pd.msg)
	}
	clear(t.unclaimed[len(kept):])
	t.unclaimed = kept
}

// unclaim drops a message no subscription claimed in time.
func (t *Transport) unclaim(pd *pending) {
	t.mu.Lock()
	found := false
	for i, p := range t.unclaimed {
		if p == pd {
			t.unclaimed = append(t.unclaimed[:i], t.unclaimed[i+1:]...)
			found = true
			break
		}
	}
	closed := t.closed
	t.mu.Unlock()
	if !found || closed {
		return
	}
	t.metrics.dropped.WithLabelValues(dropUnclaimed).Inc()
	t.ackAll([]*inbound{pd.in})
}

// releaseLocked counts one subscription off each of ins and returns those
// no subscription holds any more. The caller holds t.mu.
func (t *Transport) releaseLocked(ins []*inbound) []*inbound {
	var done []*inbound
	for _, in := range ins {
		in.refs--
		if in.refs == 0 {
			done = append(done, in)
		}
	}
	if len(done) > 0 {
		t.lastAck = time.Now()
	}
	return done
}

// ackAll acknowledges ins to the broker. paho sends the PUBACKs in the
// order the messages came, each once all before it are acked. An ack on a
// connection that has ended is ignored by paho; the broker sends the
// message again on the next one.
func (t *Transport) ackAll(ins []*inbound) {
	for _, in := range ins {
		if err := in.client.Ack(in.pub); err != nil {
			t.log.Debug("mqtt ack not sent", "topic", in.pub.Topic, "err", err)
		}
	}
}
