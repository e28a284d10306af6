package runner

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// hookFactory makes the transport of its inner factory, wrapped in a
// hookTransport with these hooks.
type hookFactory struct {
	pipeline.Factory
	subscribe func(ch pipeline.Channel) error // an error fails Subscribe on ch
	// hang makes Subscribe wait until its ctx ends, as a transport that
	// cannot connect waits for its connection.
	hang  bool
	block *blocker // non-nil: every Publish blocks on it
}

func (f hookFactory) Create(ctx context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	c, err := f.Factory.Create(ctx, set, cfg)
	if err != nil {
		return nil, err
	}
	return &hookTransport{Transport: c.(pipeline.Transport), f: f}, nil
}

type hookTransport struct {
	pipeline.Transport
	f hookFactory
}

func (t *hookTransport) Subscribe(ctx context.Context, ch pipeline.Channel, site string) (<-chan *message.Message, error) {
	if t.f.subscribe != nil {
		if err := t.f.subscribe(ch); err != nil {
			return nil, err
		}
	}
	if t.f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return t.Transport.Subscribe(ctx, ch, site)
}

func (t *hookTransport) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	if t.f.block != nil {
		t.f.block.wait() // ignores ctx: the worst a transport can do
	}
	return t.Transport.Publish(ctx, ch, site, msg)
}

// blocker holds every caller of wait until it is released.
type blocker struct {
	once    sync.Once
	release chan struct{}
	entered chan struct{} // gets a value each time wait is entered (dropped when full)
}

func newBlocker(t *testing.T) *blocker {
	b := &blocker{release: make(chan struct{}), entered: make(chan struct{}, 1)}
	t.Cleanup(b.open) // let the abandoned goroutines end with the test
	return b
}

func (b *blocker) wait() {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
}

func (b *blocker) open() { b.once.Do(func() { close(b.release) }) }

func withHooks(plan Plan, f hookFactory) Plan {
	bus := plan.Transports["bus"]
	f.Factory = bus.Factory
	plan.Transports = map[string]ComponentPlan{"bus": {Factory: f, Config: bus.Config}}
	return plan
}

// A receiver that cannot subscribe fails start-up at once with its reason
// (the router's Run error), instead of waiting for a router that will
// never run; and what had started is stopped promptly.
func TestRouterStartFailureFailsStartUp(t *testing.T) {
	refused := errors.New("subscription refused by the broker's ACL")
	plan := withHooks(allInOne(t), hookFactory{subscribe: func(ch pipeline.Channel) error {
		if ch == pipeline.ChanUp {
			return refused
		}
		return nil
	}})
	r, err := New(plan, Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	err = r.Start(ctx)
	t.Log(err)
	require.ErrorContains(t, err, "subscription refused by the broker's ACL")
	require.ErrorContains(t, err, "router")
	require.Less(t, time.Since(t0), 5*time.Second, "start-up failed at once, without waiting for the router's close timeout")
	require.NoError(t, r.Shutdown(ctx), "shutdown after a failed start is a no-op")
}

// Shutdown returns within its context's deadline plus a short grace even
// when the transport blocks forever in Publish, ignoring its context; the
// error names what was abandoned, and the stores are closed anyway.
func TestShutdownIsBoundedWhenPublishBlocks(t *testing.T) {
	block := newBlocker(t)
	devDir := t.TempDir()
	plan := withHooks(allInOne(t, devDir, t.TempDir()), hookFactory{block: block})
	r, err := New(plan, Options{})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	_, err = r.DB("local").Create(context.Background(), "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.NoError(t, err)
	select {
	case <-block.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the sender never published")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err = r.Shutdown(ctx)
	took := time.Since(t0)
	t.Logf("shutdown took %s: %v", took, err)
	// The runner gives its goroutines shutdownGrace past the deadline; the
	// rest leaves room for closing the stores on a loaded machine.
	require.Less(t, took, 500*time.Millisecond+shutdownGrace+1500*time.Millisecond, "shutdown is bounded by its context plus a grace")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "pipeline up: drain")
	assert.ErrorContains(t, err, "abandoned")

	// The stores were closed: the device store opens again, with the
	// unacknowledged change still in its outbox.
	block.open()
	r2, err := New(allInOne(t, devDir, t.TempDir()), Options{})
	require.NoError(t, err)
	require.NoError(t, r2.Open(context.Background()))
	st, err := r2.stores["local"].store.Outbox().Stats(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.Depth, "the unacknowledged change stayed in the outbox")
	require.NoError(t, r2.Shutdown(context.Background()))
}

// While the pipelines wait for a transport's connection, the stores serve
// and status shows the pipelines as starting; Shutdown then ends the start
// promptly, and Start returns an error.
func TestStoresServeWhilePipelinesWaitForTheTransport(t *testing.T) {
	ctx := context.Background()
	r, err := New(withHooks(allInOne(t), hookFactory{hang: true}), Options{})
	require.NoError(t, err)
	require.NoError(t, r.Open(ctx))
	started := make(chan error, 1)
	go func() { started <- r.Start(ctx) }()

	_, err = r.DB("local").Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.NoError(t, err)
	_, err = r.DB("local").Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.NoError(t, err)
	st := r.Status()
	require.Len(t, st.Pipelines, 4)
	for _, p := range st.Pipelines {
		assert.Equal(t, "starting", p.State, p.Name)
	}
	select {
	case err := <-started:
		t.Fatalf("Start returned while every subscription waits: %v", err)
	case <-time.After(100 * time.Millisecond):
	}

	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	t0 := time.Now()
	require.NoError(t, r.Shutdown(sctx), "nothing had started, nothing was abandoned")
	require.Less(t, time.Since(t0), 2*time.Second)
	select {
	case err := <-started:
		require.Error(t, err, "a start that Shutdown overtook fails")
	case <-time.After(2 * time.Second):
		t.Fatal("Start did not return after Shutdown")
	}
}

// A start whose context ends while it waits for a connection stops what
// it opened and returns the context's error.
func TestStartHonoursItsContext(t *testing.T) {
	devDir := t.TempDir()
	r, err := New(withHooks(allInOne(t, devDir, t.TempDir()), hookFactory{hang: true}), Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err = r.Start(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(t0), 2*time.Second)
	r2, err := New(allInOne(t, devDir, t.TempDir()), Options{})
	require.NoError(t, err)
	require.NoError(t, r2.Open(context.Background()), "the first runner closed its stores")
	require.NoError(t, r2.Shutdown(context.Background()))
}
