package mqtt

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iotod/iotod/pipeline"
)

// TestFactory creates two transports on one registry (their metrics carry
// the component id) and checks the config type and validation errors.
func TestFactory(t *testing.T) {
	b := startMochi(t, "", nil)
	f := NewFactory()
	if f.Kind() != pipeline.KindTransport || f.Type() != TypeName {
		t.Fatalf("factory is %s/%s, want transport/%s", f.Kind(), f.Type(), TypeName)
	}
	if err := f.NewDefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	reg := prometheus.NewRegistry()
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		cfg := testConfig(b.url, "{site}-"+name)
		set := pipeline.Settings{ID: pipeline.ID{Type: TypeName, Name: name}, Kind: pipeline.KindTransport,
			Site: "pump-7", Dir: dir, Metrics: reg, Logger: testLogger()}
		got, err := f.Create(t.Context(), set, &cfg)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		tr, ok := got.(*Transport)
		if !ok {
			t.Fatalf("create returned %T, want *mqtt.Transport", got)
		}
		t.Cleanup(func() { closeQuietly(tr) })
		if tr.clientID != "pump-7-"+name {
			t.Errorf("client id %q, want pump-7-%s", tr.clientID, name)
		}
		waitFor(t, 5*time.Second, "connection", tr.Connected)
	}
	if n, err := testutil.GatherAndCount(reg, "iotod_mqtt_connected"); err != nil || n != 2 {
		t.Errorf("iotod_mqtt_connected series: %d (%v), want 2", n, err)
	}
	set := pipeline.Settings{ID: pipeline.ID{Type: TypeName, Name: "x"}, Site: "dev", Dir: dir}
	if _, err := f.Create(t.Context(), set, &struct{ Config }{}); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("create with a foreign config: got %v, want ErrInvalid", err)
	}
	bad := NewDefaultConfig()
	bad.Topic = "no-placeholders"
	if _, err := f.Create(t.Context(), set, &bad); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("create with an invalid config: got %v, want ErrInvalid", err)
	}
	noSite := NewDefaultConfig()
	if _, err := f.Create(t.Context(), pipeline.Settings{Dir: dir}, &noSite); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("create without a site or client id: got %v, want ErrInvalid", err)
	}
}

// TestMaxPayload: a payload over max_payload is refused with
// ErrTooLargeForTransport; one at the limit goes through.
func TestMaxPayload(t *testing.T) {
	b := startMochi(t, "", nil)
	o := newOpener(t, b.url, func(c *Config) { c.MaxPayload = pipeline.Kilobyte })
	tr := o.open(t, "")
	in := subscribe(t, tr, pipeline.ChanUp, "dev")
	err := tr.Publish(t.Context(), pipeline.ChanUp, "dev", message.NewMessage("big", make([]byte, 1025)))
	if !errors.Is(err, pipeline.ErrTooLargeForTransport) || !errors.Is(err, pipeline.ErrTooLarge) {
		t.Fatalf("publish of 1025 bytes: got %v, want ErrTooLargeForTransport", err)
	}
	if !strings.Contains(err.Error(), "1025 bytes") {
		t.Errorf("error %q does not give the size", err)
	}
	publish(t, tr, pipeline.ChanUp, "dev", message.NewMessage("fits", make([]byte, 1024)))
	m := recv(t, in, 5*time.Second)
	if m.UUID != "fits" || len(m.Payload) != 1024 {
		t.Errorf("got %s with %d bytes, want fits with 1024", m.UUID, len(m.Payload))
	}
	m.Ack()
	quiet(t, in, 200*time.Millisecond)
}

// TestBrokerMaximumPacket: a message over the maximum packet size the
// broker gives in CONNACK is refused before it is sent (the broker would
// drop the connection, and the session would send it again on every
// reconnect). mosquitto gives one; mochi v2.7 enforces its maximum without
// announcing it.
func TestBrokerMaximumPacket(t *testing.T) {
	m := startMosquitto(t, "max_packet_size 2048")
	tr := newOpener(t, m.url, nil).open(t, "")
	in := subscribe(t, tr, pipeline.ChanUp, "dev")
	err := tr.Publish(t.Context(), pipeline.ChanUp, "dev", message.NewMessage("big", make([]byte, 3000)))
	if !errors.Is(err, pipeline.ErrTooLargeForTransport) {
		t.Fatalf("publish over the broker's maximum: got %v, want ErrTooLargeForTransport", err)
	}
	publish(t, tr, pipeline.ChanUp, "dev", message.NewMessage("small", make([]byte, 1500)))
	if m := recv(t, in, 5*time.Second); m.UUID != "small" {
		t.Errorf("got %s, want small", m.UUID)
	}
	if !tr.Connected() {
		t.Error("not connected after the refused publish")
	}
}

// TestPublishWaitsForConnection: with no broker, Publish waits until its
// context ends, and Subscribe returns within connect_timeout.
func TestPublishWaitsForConnection(t *testing.T) {
	o := newOpener(t, "mqtt://127.0.0.1:1", func(c *Config) { c.ConnectTimeout = 200 * time.Millisecond })
	tr := o.open(t, "")
	start := time.Now()
	in, err := tr.Subscribe(t.Context(), pipeline.ChanDown, "dev")
	if err != nil || in == nil {
		t.Fatalf("subscribe while disconnected: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("subscribe returned after %s, want at most about connect_timeout (200ms)", d)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = tr.Publish(ctx, pipeline.ChanUp, "dev", message.NewMessage("u", nil))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish without a broker: got %v, want DeadlineExceeded", err)
	}
	if tr.Connected() {
		t.Error("Connected() with no broker")
	}
	closeQuietly(tr)
	if err := tr.Publish(t.Context(), pipeline.ChanUp, "dev", message.NewMessage("u", nil)); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("publish after close: got %v, want ErrClosed", err)
	}
	select {
	case _, ok := <-in:
		if ok {
			t.Error("message on a closed transport")
		}
	case <-time.After(5 * time.Second):
		t.Error("subscription not closed by Close")
	}
}

// TestSubscribeWhileUnreachable: once a connection attempt has failed,
// Subscribe returns at once rather than after connect_timeout (an offline
// device starts its pipelines without waiting), and subscribes when the
// broker comes.
func TestSubscribeWhileUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	o := newOpener(t, "mqtt://"+addr, func(c *Config) {
		c.ConnectTimeout = 10 * time.Second
		c.ReconnectMax = 200 * time.Millisecond
	})
	tr := o.open(t, "")
	waitFor(t, 5*time.Second, "a failed connection attempt", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.failing
	})
	start := time.Now()
	in, err := tr.Subscribe(t.Context(), pipeline.ChanDown, "dev")
	if err != nil {
		t.Fatalf("subscribe while unreachable: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("subscribe took %s while the broker was known unreachable, want at once (connect_timeout is 10s)", d)
	}
	b := startMochi(t, addr, nil)
	waitFor(t, 10*time.Second, "connected", tr.Connected)
	pub := newOpener(t, b.url, nil).open(t, "pub")
	publish(t, pub, pipeline.ChanDown, "dev", message.NewMessage("m1", []byte("hello")))
	if m := recv(t, in, 5*time.Second); string(m.Payload) != "hello" {
		t.Fatalf("got %q", m.Payload)
	}
}
