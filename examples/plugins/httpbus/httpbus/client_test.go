package httpbus

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

// TestClientReconnects: a subscription outlives its hub: Subscribe
// returns after connect_timeout while no hub answers, and the stream
// comes up once one does, then again after the hub restarts.
func TestClientReconnects(t *testing.T) {
	first := startHub(t, DefaultMaxPayload)
	addr := first.Addr()
	closeWithin(t, first.Close)

	c, err := NewClient(Config{URL: "http://" + addr, Token: dev1Token, MaxPayload: DefaultMaxPayload, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithin(t, c.Close) })
	start := time.Now()
	in, err := c.Subscribe(t.Context(), pipeline.ChanDown, "dev-1")
	if err != nil {
		t.Fatalf("subscribe with no hub: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("subscribe with no hub returned after %s, want about connect_timeout", d)
	}
	if c.Connected() {
		t.Error("Connected with no hub")
	}

	for round := range 2 {
		h := restartHub(t, addr)
		eventually(t, c.Connected)
		// The stream may still be connecting: publish until it hears.
		got := receiveWhilePublishing(t, h, in, "dev-1")
		if got.Metadata.Get(pipeline.MetaSite) != "dev-1" {
			t.Errorf("round %d: site %q", round, got.Metadata.Get(pipeline.MetaSite))
		}
		got.Ack()
		closeWithin(t, h.Close)
		eventually(t, func() bool { return !c.Connected() })
	}
}

// TestClientHungHub: a hub that takes the connection and never answers
// is given up after connect_timeout and tried again.
func TestClientHungHub(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			t.Cleanup(func() { conn.Close() })
		}
	}()
	c, err := NewClient(Config{URL: "http://" + ln.Addr().String(), Token: dev1Token, MaxPayload: DefaultMaxPayload, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithin(t, c.Close) })
	if _, err := c.Subscribe(t.Context(), pipeline.ChanDown, "dev-1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return accepted.Load() >= 3 })
	if c.Connected() {
		t.Error("Connected to a hub that never answered")
	}
}

// restartHub starts the test hub again on addr.
func restartHub(t *testing.T, addr string) *Hub {
	t.Helper()
	h, err := NewHub(Config{Listen: addr, MaxPayload: DefaultMaxPayload, Clients: []ClientConfig{
		{Token: workerToken, Site: AnySite}, {Token: dev1Token, Site: "dev-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithin(t, h.Close) })
	return h
}

func receiveWhilePublishing(t *testing.T, h *Hub, in <-chan *message.Message, site string) *message.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case m, ok := <-in:
			if !ok {
				t.Fatal("subscription closed")
			}
			return m
		case <-tick.C:
			if err := h.Publish(t.Context(), pipeline.ChanDown, site, message.NewMessage("m", []byte("p"))); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("no message within 10s")
		}
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

// TestClientTooLarge: a payload over the client's maximum is refused
// before it leaves; one over the hub's smaller maximum is refused by the
// hub. Both wrap pipeline.ErrTooLargeForTransport.
func TestClientTooLarge(t *testing.T) {
	h := startHub(t, 100)
	c, err := NewClient(Config{URL: h.URL(), Token: dev1Token, MaxPayload: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithin(t, c.Close) })
	if c.MaxPayload() != 200 {
		t.Errorf("MaxPayload %d", c.MaxPayload())
	}
	for _, size := range []int{201, 101} {
		err := c.Publish(t.Context(), pipeline.ChanUp, "dev-1", message.NewMessage("u", make([]byte, size)))
		if !errors.Is(err, pipeline.ErrTooLargeForTransport) {
			t.Errorf("%d bytes: %v, want ErrTooLargeForTransport", size, err)
		}
	}
	if err := c.Publish(t.Context(), pipeline.ChanUp, "dev-1", message.NewMessage("u", make([]byte, 100))); err != nil {
		t.Errorf("100 bytes: %v", err)
	}
	if !c.Connected() {
		t.Error("not Connected after a publish that worked")
	}
}

// TestClientClosed: after Close, Publish and Subscribe wrap
// pipeline.ErrClosed; a Publish to a hub that is gone is retryable.
func TestClientClosed(t *testing.T) {
	h := startHub(t, DefaultMaxPayload)
	c := newClient(t, h, dev1Token)
	closeWithin(t, h.Close)
	err := c.Publish(t.Context(), pipeline.ChanUp, "dev-1", message.NewMessage("u", nil))
	if err == nil || pipeline.IsPermanent(err) {
		t.Errorf("publish to a closed hub: %v, want a retryable error", err)
	}
	closeWithin(t, c.Close)
	closeWithin(t, c.Close)
	if err := c.Publish(t.Context(), pipeline.ChanUp, "dev-1", message.NewMessage("u", nil)); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("publish after close: %v", err)
	}
	if _, err := c.Subscribe(context.Background(), pipeline.ChanDown, "dev-1"); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("subscribe after close: %v", err)
	}
}
