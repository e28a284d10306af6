package plugintest

import (
	"context"
	"testing"

	"github.com/iotod/iotod/pipeline"
)

// testTransportContextCancel: ending a subscription's context closes its
// channel, even with a message delivered and not acked; the transport
// goes on working.
func testTransportContextCancel(c *transportCase) {
	tr := c.transport()
	site := c.site("cancel")
	ctx, cancel := context.WithCancel(c.t.Context())
	defer cancel()
	r := c.subscribe(ctx, tr, pipeline.ChanUpAck, site)
	c.publish(tr, pipeline.ChanUpAck, site, c.msg(1))
	_ = r.next() // held, not acked
	cancel()
	r.closes()

	r2 := c.subscribe(c.t.Context(), tr, pipeline.ChanUpAck, site)
	c.publish(tr, pipeline.ChanUpAck, site, c.msg(2))
	r2.expect(2, site)
}

// testTransportCloseEndsSubscriptions: Close closes every subscription's
// channel.
func testTransportCloseEndsSubscriptions(c *transportCase) {
	tr := c.transport()
	ctx := c.t.Context()
	r1 := c.subscribe(ctx, tr, pipeline.ChanDownAck, c.site("close"))
	r2 := c.subscribe(ctx, tr, pipeline.ChanDownAck, "")
	closeTransport(c.t, tr)
	r1.closes()
	r2.closes()
}

func testTransportCloseWithoutSubscribe(c *transportCase) {
	closeTransport(c.t, c.transport())
}

func testTransportDoubleClose(c *transportCase) {
	tr := c.transport()
	_ = c.subscribe(c.t.Context(), tr, pipeline.ChanUp, c.site("double"))
	closeTransport(c.t, tr)
	closeTransport(c.t, tr)
}

// testTransportUseAfterClose: Publish and Subscribe fail after Close.
func testTransportUseAfterClose(c *transportCase) {
	tr := c.transport()
	site := c.site("after")
	_ = c.subscribe(c.t.Context(), tr, pipeline.ChanUp, site)
	closeTransport(c.t, tr)
	if err := tr.Publish(c.t.Context(), pipeline.ChanUp, site, c.msg(1)); err == nil {
		c.t.Error("publish after close: got nil error")
	}
	if ch, err := tr.Subscribe(c.t.Context(), pipeline.ChanUp, site); err == nil {
		c.t.Errorf("subscribe after close: got a channel (%v) and nil error", ch)
	}
}

// testTransportRedeliveryAfterRestart: a message delivered and not acked
// before the transport closed is delivered again after it is reopened.
func testTransportRedeliveryAfterRestart(c *transportCase, f TransportFeatures) {
	if !f.Persistent {
		c.t.Skip("transport is not persistent")
	}
	site := c.site("restart")
	tr := c.transport()
	r := c.subscribe(c.t.Context(), tr, pipeline.ChanDown, site)
	sent := c.msg(1)
	c.publish(tr, pipeline.ChanDown, site, sent)
	got := r.next() // held, not acked
	checkMsg(c.t, r.name, got, 1, site)
	closeTransport(c.t, tr)

	tr2 := c.transport()
	r2 := c.subscribe(c.t.Context(), tr2, pipeline.ChanDown, site)
	again := r2.next()
	checkMsg(c.t, r2.name+" after restart", again, 1, site)
	if again.UUID != sent.UUID {
		c.t.Errorf("after restart: uuid %q, want %q", again.UUID, sent.UUID)
	}
	again.Ack()
}

func closeTransport(t *testing.T, tr pipeline.Transport) {
	t.Helper()
	if err := tr.Close(t.Context()); err != nil {
		t.Fatalf("close: %v", err)
	}
}
