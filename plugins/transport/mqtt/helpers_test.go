package mqtt

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iotod/iotod/pipeline"
)

// mosquittoEnv names the URL of a mosquitto broker for the tests; make
// test starts one and sets it.
const mosquittoEnv = "IOTOD_MOSQUITTO_URL"

// mosquittoURL returns the URL of the mosquitto broker, skipping t when
// there is none.
func mosquittoURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv(mosquittoEnv)
	if u == "" {
		t.Skipf("%s is not set: no mosquitto broker (make test starts one: scripts/services.sh start)", mosquittoEnv)
	}
	return u
}

// mochiBroker is an embedded broker on a loopback port, allowing every
// client everything.
type mochiBroker struct {
	once sync.Once
	srv  *mochi.Server
	addr string
	url  string
}

// startMochi starts a broker on addr ("" for a free port), with TLS when
// tlsCfg is set. It stops when the test ends.
func startMochi(t *testing.T, addr string, tlsCfg *tls.Config) *mochiBroker {
	t.Helper()
	return startMochiWith(t, addr, tlsCfg, nil)
}

// startMochiWith is startMochi with options tuned by tune.
func startMochiWith(t *testing.T, addr string, tlsCfg *tls.Config, tune func(*mochi.Options)) *mochiBroker {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // a port just closed may take a moment to be free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("broker listen on %s: %v", addr, err)
	}
	scheme := "mqtt://"
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "mqtts://"
	}
	opts := &mochi.Options{Logger: slog.New(slog.DiscardHandler)}
	if tune != nil {
		tune(opts)
	}
	srv := mochi.New(opts)
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewNet("test", ln)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	b := &mochiBroker{srv: srv, addr: ln.Addr().String()}
	b.url = scheme + b.addr
	t.Cleanup(b.stop)
	return b
}

// stop closes the broker; it is safe to call twice.
func (b *mochiBroker) stop() {
	b.once.Do(func() { _ = b.srv.Close() })
}

var unsafeID = regexp.MustCompile(`[^A-Za-z0-9_.:-]+`)

// testLogger discards logs unless IOTOD_TEST_LOG is set (paho's goroutines
// may log after the test ends, so t.Log cannot take them).
func testLogger() *slog.Logger {
	if os.Getenv("IOTOD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig is the config of a test transport on url, reconnecting fast.
func testConfig(url, clientID string) Config {
	cfg := NewDefaultConfig()
	cfg.URL = url
	cfg.ClientID = clientID
	cfg.ReconnectMin = 50 * time.Millisecond
	cfg.ReconnectMax = 500 * time.Millisecond
	cfg.SessionExpiry = 10 * time.Minute
	cfg.ConnectTimeout = 5 * time.Second
	return cfg
}

// opener opens transports on url for tests that run beside others on one
// broker: the client id, share group and session folder come from the
// test's name and a run id, so the same test opening twice gets the same
// session, and no two tests (nor two runs) share one.
type opener struct {
	url  string
	run  string
	base string
	tune func(*Config)
}

func newOpener(t *testing.T, url string, tune func(*Config)) *opener {
	return &opener{url: url, run: watermill.NewShortUUID()[:6], base: t.TempDir(), tune: tune}
}

func (o *opener) id(t *testing.T, role string) string {
	name := strings.TrimPrefix(t.Name(), "Test")
	id := o.run + "-" + unsafeID.ReplaceAllString(name, ".") + role
	if len(id) > 100 {
		id = id[len(id)-100:]
	}
	return id
}

// open opens the transport of t's role ("" for the suite).
func (o *opener) open(t *testing.T, role string) *Transport {
	t.Helper()
	id := o.id(t, role)
	cfg := testConfig(o.url, id)
	cfg.ShareGroup = "g" + o.run + "-" + strings.ReplaceAll(o.id(t, ""), ":", ".")
	cfg.SessionDir = filepath.Join(o.base, id)
	if o.tune != nil {
		o.tune(&cfg)
	}
	tr, err := New(cfg, pipeline.Settings{Site: "test", Dir: o.base, Logger: testLogger()})
	if err != nil {
		t.Fatalf("new transport %s: %v", id, err)
	}
	t.Cleanup(func() { closeQuietly(tr) })
	return tr
}

// suite is the opener plugintest.TestTransport takes.
func (o *opener) suite(t *testing.T) pipeline.Transport { return o.open(t, "") }

func closeQuietly(tr *Transport) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tr.Close(ctx)
}

// waitFor polls cond until it holds, failing t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recv returns the next message of in, failing t after d.
func recv(t *testing.T, in <-chan *message.Message, d time.Duration) *message.Message {
	t.Helper()
	select {
	case m, ok := <-in:
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-time.After(d):
		t.Fatalf("no message within %s", d)
	}
	return nil
}

// quiet fails t if a message arrives on in within d.
func quiet(t *testing.T, in <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case m, ok := <-in:
		if ok {
			t.Errorf("unexpected message %s (%q, site %q)", m.UUID, m.Payload, m.Metadata.Get(pipeline.MetaSite))
		}
	case <-time.After(d):
	}
}

func publish(t *testing.T, tr pipeline.Transport, ch pipeline.Channel, site string, m *message.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := tr.Publish(ctx, ch, site, m); err != nil {
		t.Fatalf("publish %s on %s for %s: %v", m.UUID, ch, site, err)
	}
}

func subscribe(t *testing.T, tr pipeline.Transport, ch pipeline.Channel, site string) <-chan *message.Message {
	t.Helper()
	in, err := tr.Subscribe(t.Context(), ch, site)
	if err != nil {
		t.Fatalf("subscribe to %s for %q: %v", ch, site, err)
	}
	return in
}

// dropped reads iotod_mqtt_dropped_total for reason.
func dropped(tr *Transport, reason string) float64 {
	return testutil.ToFloat64(tr.metrics.dropped.WithLabelValues(reason))
}
