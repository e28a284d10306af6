package broker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
)

// withUsers is a broker config with devices d1 and d2, a cloud worker
// and no anonymous access.
func withUsers() Config {
	cfg := NewDefaultConfig()
	cfg.Anonymous = false
	cfg.Users = []User{
		{Username: "d1", Password: "p1", Site: "d1"},
		{Username: "d2-user", Password: "p2", Site: "d2"},
		{Username: "worker", Password: "pw", Role: RoleCloud},
	}
	return cfg
}

var (
	d1Opts    = opts{id: "d1", user: "d1", pass: "p1"}
	cloudOpts = opts{id: "worker-1", user: "worker", pass: "pw"}
)

func TestDevicePublishesOnlyItsOwnTopics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := startBroker(t, withUsers(), reg)
	cloud := mustDial(t, b.Addr(), cloudOpts)
	require.NoError(t, cloud.subscribe(t, "$share/iotod/iotod/+/up"))
	d1 := mustDial(t, b.Addr(), d1Opts)

	require.NoError(t, d1.publish(t, "iotod/d1/up", "one", 1))
	assert.ErrorContains(t, d1.publish(t, "iotod/d2/up", "forged", 1), "not authori", "a QoS 1 publish elsewhere gets a refusing PUBACK")
	require.NoError(t, d1.publish(t, "iotod/d2/up", "forged qos 0", 0), "QoS 0 has no ack: dropped silently")
	require.NoError(t, d1.publish(t, "iotod/d1/up", "two", 1))

	for _, want := range []string{"one", "two"} {
		m := cloud.next(t)
		assert.Equal(t, "iotod/d1/up", m.Topic)
		assert.Equal(t, want, string(m.Payload))
	}
	assert.Empty(t, cloud.msgs, "nothing of d2's site")
	assert.Equal(t, 2.0, counter(t, reg, "iotod_broker_acl_refused_total", "publish"))
}

func TestDeviceSubscribesOnlyItsOwnTopics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := startBroker(t, withUsers(), reg)
	d1 := mustDial(t, b.Addr(), d1Opts)
	for _, filter := range []string{"iotod/d2/down", "iotod/+/down", "iotod/#", "#", "iotod/d1/up", "$share/g/iotod/d1/down"} {
		assert.Error(t, d1.subscribe(t, filter), filter)
	}
	assert.Equal(t, 6.0, counter(t, reg, "iotod_broker_acl_refused_total", "subscribe"))
	for _, filter := range []string{"iotod/d1/down", "iotod/d1/up-ack", "iotod/all/down"} {
		require.NoError(t, d1.subscribe(t, filter), filter)
	}

	cloud := mustDial(t, b.Addr(), cloudOpts)
	for _, topic := range []string{"iotod/d2/down", "iotod/all/down", "iotod/d1/up-ack"} {
		require.NoError(t, cloud.publish(t, topic, topic, 1))
	}
	assert.Equal(t, "iotod/all/down", d1.next(t).Topic)
	assert.Equal(t, "iotod/d1/up-ack", d1.next(t).Topic)
	assert.Empty(t, d1.msgs)
}

func TestCloudSubscriptions(t *testing.T) {
	b := startBroker(t, withUsers(), nil)
	cloud := mustDial(t, b.Addr(), cloudOpts)
	for _, filter := range []string{"$share/iotod/iotod/+/up", "$share/iotod/iotod/+/sync", "iotod/+/down-ack", "iotod/#"} {
		assert.NoError(t, cloud.subscribe(t, filter), filter)
	}
	for _, filter := range []string{"#", "other/topic", "$SYS/#", "+/d1/up"} {
		assert.Error(t, cloud.subscribe(t, filter), filter)
	}
	assert.Error(t, cloud.publish(t, "other/topic", "x", 1), "outside the template")
}

// TestSharedSubscriptionSplits checks that two cloud workers in one share
// group each get part of the devices' messages, and together all of them.
func TestSharedSubscriptionSplits(t *testing.T) {
	b := startBroker(t, withUsers(), nil)
	w1 := mustDial(t, b.Addr(), cloudOpts)
	w2 := mustDial(t, b.Addr(), opts{id: "worker-2", user: "worker", pass: "pw"})
	for _, w := range []*client{w1, w2} {
		require.NoError(t, w.subscribe(t, "$share/iotod/iotod/+/up"))
	}
	d1 := mustDial(t, b.Addr(), d1Opts)
	const n = 20
	for range n {
		require.NoError(t, d1.publish(t, "iotod/d1/up", "x", 1))
	}
	got := map[*client]int{}
	for range n {
		select {
		case <-w1.msgs:
			got[w1]++
		case <-w2.msgs:
			got[w2]++
		case <-t.Context().Done():
		}
	}
	assert.Equal(t, n, got[w1]+got[w2])
	assert.Empty(t, w1.msgs)
	assert.Empty(t, w2.msgs)
}

func TestAuthentication(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := startBroker(t, withUsers(), reg)
	for _, o := range []opts{
		{id: "d1", user: "d1", pass: "wrong"},
		{id: "d1", user: "d1"},
		{id: "x", user: "nobody", pass: "p1"},
		{id: "d1"}, // no credentials, anonymous off
		{id: "d1", pass: "p1"},
	} {
		_, ack, err := dial(t, b.Addr(), o)
		require.Error(t, err, "%+v", o)
		if ack != nil {
			assert.Equal(t, byte(0x86), ack.ReasonCode, "bad user name or password")
		}
	}
	assert.Equal(t, 5.0, counter(t, reg, "iotod_broker_connections_refused_total", refusedCredentials))
	mustDial(t, b.Addr(), opts{id: "any-id", user: "d2-user", pass: "p2"})
}

func TestAnonymousClientIDIsTheSite(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Users = []User{{Username: "worker", Password: "pw", Role: RoleCloud}}
	b := startBroker(t, cfg, nil)
	cloud := mustDial(t, b.Addr(), cloudOpts)
	require.NoError(t, cloud.subscribe(t, "iotod/+/up"))

	dev := mustDial(t, b.Addr(), opts{id: "dev-7"})
	assert.Error(t, dev.publish(t, "iotod/d1/up", "forged", 1))
	require.NoError(t, dev.publish(t, "iotod/dev-7/up", "mine", 1))
	assert.Equal(t, "iotod/dev-7/up", cloud.next(t).Topic)
	assert.Error(t, dev.subscribe(t, "iotod/d1/down"))
	assert.NoError(t, dev.subscribe(t, "iotod/dev-7/down"))

	for _, id := range []string{"", pipeline.Broadcast, "bad id"} {
		_, _, err := dial(t, b.Addr(), opts{id: id})
		assert.Error(t, err, "client id %q", id)
	}
}

func TestWillMustBeOnOwnTopic(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := startBroker(t, withUsers(), reg)
	o := d1Opts
	o.will = "iotod/d2/up"
	_, _, err := dial(t, b.Addr(), o)
	require.Error(t, err)
	assert.Equal(t, 1.0, counter(t, reg, "iotod_broker_connections_refused_total", refusedWill))
	o.will = "iotod/d1/sync"
	mustDial(t, b.Addr(), o)
}

// TestClientIDOfAnotherSite checks that a device cannot take over the
// session of another site's client by reusing its client id.
func TestClientIDOfAnotherSite(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := startBroker(t, withUsers(), reg)
	d1 := mustDial(t, b.Addr(), opts{id: "shared", user: "d1", pass: "p1", session: true})
	require.NoError(t, d1.subscribe(t, "iotod/d1/down"))
	_, _, err := dial(t, b.Addr(), opts{id: "shared", user: "d2-user", pass: "p2", session: true})
	require.Error(t, err)
	assert.Equal(t, 1.0, counter(t, reg, "iotod_broker_connections_refused_total", refusedClientID))
	mustDial(t, b.Addr(), opts{id: "shared", user: "d1", pass: "p1", session: true})
}

// TestPersistentSession checks that a QoS 1 message queued for a
// disconnected session survives a broker restart with persistence, and
// is lost without it.
func TestPersistentSession(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(map[bool]string{true: "persistence", false: "memory"}[persist], func(t *testing.T) {
			cfg := withUsers()
			if persist {
				testenv.NeedBadger(t)
				cfg.Persistence = t.TempDir()
			}
			o := opts{id: "worker-p", user: "worker", pass: "pw", session: true}
			b := startBroker(t, cfg, nil)
			w := mustDial(t, b.Addr(), o)
			require.NoError(t, w.subscribe(t, "iotod/+/up"))
			require.NoError(t, w.Disconnect(&paho.Disconnect{}))
			d1 := mustDial(t, b.Addr(), d1Opts)
			require.NoError(t, d1.publish(t, "iotod/d1/up", "queued", 1))
			require.NoError(t, b.Close(t.Context()))

			cfg.Listen = b.Addr() // the same port
			b2, err := Start(t.Context(), cfg, nil, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = b2.Close(context.Background()) })
			w2, ack, err := dial(t, b2.Addr(), o)
			require.NoError(t, err)
			if !persist {
				assert.False(t, ack.SessionPresent)
				return
			}
			assert.True(t, ack.SessionPresent)
			m := w2.next(t)
			assert.Equal(t, "iotod/d1/up", m.Topic)
			assert.Equal(t, "queued", string(m.Payload))
		})
	}
}

func TestStartAndClose(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Listen = "0.0.0.0:0"
	_, err := Start(t.Context(), cfg, nil, nil)
	require.ErrorIs(t, err, pipeline.ErrInvalid, "not loopback")

	b := startBroker(t, NewDefaultConfig(), nil)
	_, port, err := net.SplitHostPort(b.Addr())
	require.NoError(t, err)
	assert.NotEqual(t, "0", port)
	cfg = NewDefaultConfig()
	cfg.Listen = b.Addr()
	_, err = Start(t.Context(), cfg, nil, nil)
	assert.ErrorContains(t, err, "broker listen", "the port is taken")

	require.NoError(t, b.Close(t.Context()))
	require.NoError(t, b.Close(t.Context()), "twice")
	_, _, err = dial(t, b.Addr(), opts{id: "d1"})
	assert.Error(t, err, "closed")

	// Metrics registered twice in one registry (a restart) keep counting.
	reg := prometheus.NewRegistry()
	startBroker(t, NewDefaultConfig(), reg)
	startBroker(t, NewDefaultConfig(), reg)
}

// records is a slog handler that keeps every record.
type records struct {
	mu sync.Mutex
	rs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }

func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rs = append(h.rs, r.Clone())
	return nil
}

func (h *records) all() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.rs)
}

// TestCloseLogsNoWarning closes the broker under a connected client: the
// end of the client's connection is a debug line with a message, not a
// warning with none.
func TestCloseLogsNoWarning(t *testing.T) {
	logs := &records{}
	cfg := withUsers()
	cfg.Listen = "127.0.0.1:0"
	b, err := Start(t.Context(), cfg, slog.New(logs), nil)
	require.NoError(t, err)
	mustDial(t, b.Addr(), d1Opts)
	require.NoError(t, b.Close(t.Context()))
	// mochi logs the end of the connection just after Close returns.
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(logs.all(), func(r slog.Record) bool { return r.Message == "client connection ended" })
	}, wait, 10*time.Millisecond, "the connection's end is logged")
	for _, r := range logs.all() {
		assert.NotEmpty(t, r.Message, "a log line without a message")
		assert.Less(t, r.Level, slog.LevelWarn, "%s %q %v", r.Level, r.Message, attrsOf(r))
	}
}

func attrsOf(r slog.Record) []slog.Attr {
	var out []slog.Attr
	r.Attrs(func(a slog.Attr) bool { out = append(out, a); return true })
	return out
}

// TestDemote: mochi's info lines and its warnings about a closed
// connection are debug lines; only the listener's empty-message line is
// named, another's (a hook's) is left as mochi wrote it.
func TestDemote(t *testing.T) {
	logs := &records{}
	log := slog.New(demote{Handler: logs})
	log.Info("hook added")
	log.With("listener", "iotod").Warn("", "error", &net.OpError{Op: "read", Err: net.ErrClosed})
	log.With("listener", "iotod").Warn("", "error", errors.New("bad packet"))
	log.With("hook", "badger-db").Error("", "error", errors.New("db not open"))
	got := logs.all()
	require.Len(t, got, 4)
	for i, want := range []struct {
		level slog.Level
		msg   string
	}{{slog.LevelDebug, "hook added"}, {slog.LevelDebug, "client connection ended"},
		{slog.LevelWarn, "client connection ended"}, {slog.LevelError, ""}} {
		assert.Equal(t, want.level, got[i].Level, "line %d", i)
		assert.Equal(t, want.msg, got[i].Message, "line %d", i)
	}
}
