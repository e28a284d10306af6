package inproc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

func newTransport(t *testing.T, cfg Config) *Transport {
	t.Helper()
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return tr
}

func TestConformance(t *testing.T) {
	plugintest.TestTransport(t, plugintest.TransportFeatures{Persistent: false},
		func(t *testing.T) pipeline.Transport { return newTransport(t, NewDefaultConfig()) })
}

// TestConformanceSmallBuffer runs the suite with publishers waiting for
// room much of the time.
func TestConformanceSmallBuffer(t *testing.T) {
	plugintest.TestTransport(t, plugintest.TransportFeatures{},
		func(t *testing.T) pipeline.Transport { return newTransport(t, Config{Buffer: 8}) })
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	if f.Kind() != pipeline.KindTransport || f.Type() != TypeName {
		t.Fatalf("factory is %s/%s, want transport/%s", f.Kind(), f.Type(), TypeName)
	}
	cfg := f.NewDefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	reg := prometheus.NewRegistry()
	set := pipeline.Settings{ID: pipeline.ID{Type: TypeName, Name: "bus"}, Kind: pipeline.KindTransport, Metrics: reg}
	got, err := f.Create(t.Context(), set, cfg)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	tr, ok := got.(pipeline.Transport)
	if !ok {
		t.Fatalf("create returned %T, want a pipeline.Transport", got)
	}
	// Nobody subscribes: the message is dropped and counted.
	if err := tr.Publish(t.Context(), pipeline.ChanUp, "dev", message.NewMessage("u1", nil)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if n := counterValue(t, reg, "iotod_inproc_dropped_total"); n != 1 {
		t.Errorf("dropped = %v, want 1", n)
	}
	if err := tr.Close(t.Context()); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := f.Create(t.Context(), set, &struct{ Config }{}); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("create with a foreign config: got %v, want ErrInvalid", err)
	}
	if _, err := f.Create(t.Context(), set, &Config{Buffer: 0}); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("create with an invalid config: got %v, want ErrInvalid", err)
	}
}

// TestPublishWaitsForRoom: with a full subscription, Publish waits until
// the consumer acks, and gives up when its context ends.
func TestPublishWaitsForRoom(t *testing.T) {
	tr := newTransport(t, Config{Buffer: 2})
	defer func() { _ = tr.Close(context.Background()) }()
	in, err := tr.Subscribe(t.Context(), pipeline.ChanUp, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := tr.Publish(t.Context(), pipeline.ChanUp, "dev", message.NewMessage(string(rune('a'+i)), nil)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = tr.Publish(ctx, pipeline.ChanUp, "dev", message.NewMessage("c", nil))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish to a full subscription: got %v, want DeadlineExceeded", err)
	}
	// A publish for another site does not wait.
	if err := tr.Publish(t.Context(), pipeline.ChanUp, "other", message.NewMessage("d", nil)); err != nil {
		t.Fatalf("publish for another site: %v", err)
	}

	done := make(chan error, 1)
	go func() { done <- tr.Publish(t.Context(), pipeline.ChanUp, "dev", message.NewMessage("e", nil)) }()
	select {
	case err := <-done:
		t.Fatalf("publish returned %v before there was room", err)
	case <-time.After(50 * time.Millisecond):
	}
	(<-in).Ack()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("publish after room: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("publish still waiting after the consumer acked")
	}
	for _, want := range []string{"b", "e"} {
		m := <-in
		if m.UUID != want {
			t.Fatalf("got %q, want %q", m.UUID, want)
		}
		m.Ack()
	}
}

// TestPublishLeavesMessageAlone: the caller's message is not changed.
func TestPublishLeavesMessageAlone(t *testing.T) {
	tr := newTransport(t, NewDefaultConfig())
	defer func() { _ = tr.Close(context.Background()) }()
	m := message.NewMessage("u", []byte("x"))
	m.Metadata.Set(pipeline.MetaSite, "forged")
	if err := tr.Publish(t.Context(), pipeline.ChanUp, "dev", m); err != nil {
		t.Fatal(err)
	}
	if got := m.Metadata.Get(pipeline.MetaSite); got != "forged" {
		t.Errorf("caller's metadata changed to %q", got)
	}
}

// TestMessageContext: a delivered message's context ends when it is acked
// (watermill's contract).
func TestMessageContext(t *testing.T) {
	tr := newTransport(t, NewDefaultConfig())
	defer func() { _ = tr.Close(context.Background()) }()
	in, err := tr.Subscribe(t.Context(), pipeline.ChanDown, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Publish(t.Context(), pipeline.ChanDown, "dev", message.NewMessage("u", nil)); err != nil {
		t.Fatal(err)
	}
	m := <-in
	if err := m.Context().Err(); err != nil {
		t.Fatalf("context ended before ack: %v", err)
	}
	m.Ack()
	select {
	case <-m.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context not canceled after ack")
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
