package plugintest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

// TransportFeatures says what a transport under test can do, like
// watermill's tests.Features.
type TransportFeatures struct {
	// Persistent: a message published and not acked is delivered again
	// after the transport is closed and opened again (a broker keeps it).
	Persistent bool
	// Timeout bounds each wait for a message or a closed subscription.
	// Zero means 5s.
	Timeout time.Duration
}

// TestTransport runs the transport conformance suite. open must return a
// working transport, failing t otherwise; every call must reach the same
// message space (for a broker-backed transport, the same broker), and for
// Persistent transports the same sessions. The suite closes every
// transport it opens.
//
// The contract it checks: Subscribe returns once the subscription is
// live; a subscription for a site gets that site's messages and
// pipeline.Broadcast's, one for site "" gets every message of its channel;
// the transport sets pipeline.MetaSite to the site given to Publish; a
// subscription delivers the messages of one publisher in publish order,
// the next only after the current one is acked; a nacked message comes
// again before later ones; a subscription's channel closes when its
// context ends or the transport closes; Close is idempotent and safe
// without Subscribe; Publish and Subscribe fail after Close.
//
// A transport may make Publish wait while a subscription holds unacked
// messages, but must take at least 8 before it does.
//
// Subtests run in parallel, each with its own sites and a run id in the
// metadata of its messages, so they can share a broker.
func TestTransport(t *testing.T, features TransportFeatures, open func(t *testing.T) pipeline.Transport) {
	tests := []struct {
		name string
		fn   func(c *transportCase)
	}{
		{"Ordering", testTransportOrdering},
		{"AckNack", testTransportAckNack},
		{"SiteFiltering", testTransportSiteFiltering},
		{"ForgedSite", testTransportForgedSite},
		{"PublishRequiresSite", testTransportPublishRequiresSite},
		{"ConcurrentPublishers", testTransportConcurrentPublishers},
		{"ContextCancel", testTransportContextCancel},
		{"CloseEndsSubscriptions", testTransportCloseEndsSubscriptions},
		{"CloseWithoutSubscribe", testTransportCloseWithoutSubscribe},
		{"DoubleClose", testTransportDoubleClose},
		{"UseAfterClose", testTransportUseAfterClose},
		{"RedeliveryAfterRestart", func(c *transportCase) { testTransportRedeliveryAfterRestart(c, features) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(newTransportCase(t, features, open))
		})
	}
}

// testTransportOrdering: N messages for one site arrive in publish order,
// with UUID, payload and metadata intact.
func testTransportOrdering(c *transportCase) {
	const n = 100
	tr := c.transport()
	site := c.site("order")
	r := c.subscribe(c.t.Context(), tr, pipeline.ChanUp, site)
	uuids := make([]string, n)
	msgs := make([]*message.Message, n)
	for i := range n {
		msgs[i] = c.msg(i)
		msgs[i].Metadata.Set("extra", "kept "+strconv.Itoa(i))
		uuids[i] = msgs[i].UUID
	}
	// Publish while receiving: the transport may make publishers wait.
	wait := c.publishAll(tr, pipeline.ChanUp, site, msgs)
	defer wait()
	for i := range n {
		m := r.next()
		checkMsg(c.t, r.name, m, i, site)
		if m.UUID != uuids[i] {
			c.t.Errorf("message %d: uuid %q, want %q", i, m.UUID, uuids[i])
		}
		if got := m.Metadata.Get("extra"); got != "kept "+strconv.Itoa(i) {
			c.t.Errorf("message %d: metadata extra = %q, want %q", i, got, "kept "+strconv.Itoa(i))
		}
		m.Ack()
	}
	r.none()
}

// testTransportAckNack: a nacked message comes again, before the next
// one; an acked one never does.
func testTransportAckNack(c *transportCase) {
	tr := c.transport()
	site := c.site("nack")
	r := c.subscribe(c.t.Context(), tr, pipeline.ChanDown, site)
	first := c.msg(1)
	c.publish(tr, pipeline.ChanDown, site, first)
	c.publish(tr, pipeline.ChanDown, site, c.msg(2))
	for attempt := range 3 {
		m := r.next()
		checkMsg(c.t, r.name+" attempt "+strconv.Itoa(attempt), m, 1, site)
		if m.UUID != first.UUID {
			c.t.Errorf("redelivery %d: uuid %q, want %q", attempt, m.UUID, first.UUID)
		}
		if attempt < 2 {
			m.Nack()
		} else {
			m.Ack()
		}
	}
	r.expect(2, site)
	r.none()
}

// testTransportSiteFiltering: a site's subscriber gets its site's messages
// and broadcasts only; a "" subscriber gets every message of the channel.
func testTransportSiteFiltering(c *transportCase) {
	tr := c.transport()
	a, b, other := c.site("a"), c.site("b"), c.site("other")
	ctx := c.t.Context()
	ra := c.subscribe(ctx, tr, pipeline.ChanDown, a)
	rb := c.subscribe(ctx, tr, pipeline.ChanDown, b)
	rall := c.subscribe(ctx, tr, pipeline.ChanDown, "")
	// Same sites on another channel must hear nothing.
	rup := c.subscribe(ctx, tr, pipeline.ChanUp, a)

	c.publish(tr, pipeline.ChanDown, a, c.msg(1))
	c.publish(tr, pipeline.ChanDown, b, c.msg(2))
	c.publish(tr, pipeline.ChanDown, pipeline.Broadcast, c.msg(3))
	c.publish(tr, pipeline.ChanDown, other, c.msg(4))

	ra.expect(1, a)
	ra.expect(3, pipeline.Broadcast)
	rb.expect(2, b)
	rb.expect(3, pipeline.Broadcast)
	rall.expect(1, a)
	rall.expect(2, b)
	rall.expect(3, pipeline.Broadcast)
	rall.expect(4, other)
	ra.none()
	rb.none()
	rall.none()
	rup.none()
}

// testTransportForgedSite: the transport sets MetaSite from the Publish
// call, whatever the message carried.
func testTransportForgedSite(c *transportCase) {
	tr := c.transport()
	honest, victim := c.site("honest"), c.site("victim")
	ctx := c.t.Context()
	rh := c.subscribe(ctx, tr, pipeline.ChanUp, honest)
	rv := c.subscribe(ctx, tr, pipeline.ChanUp, victim)
	m := c.msg(1)
	m.Metadata.Set(pipeline.MetaSite, victim)
	c.publish(tr, pipeline.ChanUp, honest, m)
	rh.expect(1, honest)
	rv.none()
}

// testTransportPublishRequiresSite: a message with no site is refused.
func testTransportPublishRequiresSite(c *transportCase) {
	tr := c.transport()
	if err := tr.Publish(c.t.Context(), pipeline.ChanUp, "", c.msg(1)); err == nil {
		c.t.Fatal("publish with an empty site: got nil error")
	}
}

// testTransportConcurrentPublishers: publishers on several goroutines lose
// nothing, and each one's messages keep their order.
func testTransportConcurrentPublishers(c *transportCase) {
	const publishers, each = 4, 50
	tr := c.transport()
	sites := []string{c.site("p0"), c.site("p1")}
	r := c.subscribe(c.t.Context(), tr, pipeline.ChanSync, "")

	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				m := c.msg(i)
				m.Metadata.Set(metaPub, strconv.Itoa(p))
				ctx, cancel := context.WithTimeout(c.t.Context(), c.timeout)
				err := tr.Publish(ctx, pipeline.ChanSync, sites[p%2], m)
				cancel()
				if err != nil {
					c.t.Errorf("publisher %d, message %d: %v", p, i, err)
					return
				}
			}
		})
	}

	// Publishers log errors, so they must be done before the test ends.
	defer wg.Wait()

	next := make([]int, publishers) // next message number expected per publisher
	for range publishers * each {
		m := r.next()
		p, err := strconv.Atoi(m.Metadata.Get(metaPub))
		if err != nil || p < 0 || p >= publishers {
			c.t.Fatalf("message without a valid publisher: %q", m.Metadata.Get(metaPub))
		}
		checkMsg(c.t, r.name+" publisher "+strconv.Itoa(p), m, next[p], sites[p%2])
		next[p]++
		m.Ack()
	}
	r.none()
}
