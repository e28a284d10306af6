package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outagePassword is the password of the PostgreSQL URLs of these tests:
// it must never show in iotod's output.
const outagePassword = "pw-0utage-Zq7kX9"

// TestPostgresUnreachableAtStart starts a cloud worker whose PostgreSQL
// is unreachable: a port nothing listens on (refused), and a listener
// that accepts and never answers (silent). `iotod run` exits non-zero by
// itself, within a bound far below what an unbounded connect would take
// (connect_timeout is 1s), naming the server's host:port and never the
// password of the URL. `iotod validate` accepts the same config: it does
// not dial.
func TestPostgresUnreachableAtStart(t *testing.T) {
	iotodBin(t) // skips under -short
	for _, tc := range []struct {
		name   string
		listen func(t *testing.T) string
	}{
		{"refused", freeAddr},
		{"silent", silentListener},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.listen(t)
			pgURL := fmt.Sprintf("postgres://iotod_e2e:%s@%s/iotod_test", outagePassword, addr)
			cfg := filepath.Join(t.TempDir(), "cloud.yaml")
			require.NoError(t, os.WriteFile(cfg, []byte(postgresWorkerConfig(t, pgURL, "e2e_unreachable", freeAddr(t), 1, time.Second)), 0o600))

			// validate does not dial: it accepts the config.
			out, err := exec.Command(iotodBin(t), "validate", "-c", cfg).CombinedOutput()
			require.NoError(t, err, "iotod validate must accept the config without dialing the server:\n%s", out)
			assert.True(t, strings.HasPrefix(string(out), "ok"), "iotod validate prints ok:\n%s", out)
			assert.NotContains(t, string(out), outagePassword, "iotod validate shows the password")

			// run fails by itself, in bounded time.
			const bound = 30 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			t0 := time.Now()
			out, err = exec.CommandContext(ctx, iotodBin(t), "run", "-c", cfg).CombinedOutput()
			took := time.Since(t0)
			require.NoError(t, ctx.Err(), "iotod run did not exit within %s with connect_timeout 1s (server %s %s):\n%s", bound, tc.name, addr, out)
			require.Error(t, err, "iotod run must fail with its PostgreSQL unreachable:\n%s", out)
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "iotod run exits by itself:\n%s", out)
			assert.NotZero(t, exit.ExitCode())
			t.Logf("%s: iotod run exited %d after %s:\n%s", tc.name, exit.ExitCode(), took.Round(time.Millisecond), out)
			assert.Contains(t, string(out), addr, "the message names the server's host:port")
			assert.NotContains(t, string(out), outagePassword, "the password shows in iotod run's output")
			assert.NotContains(t, string(out), "iotod serving", "nothing is served")
		})
	}
}

// silentListener listens on a loopback port, accepts every connection
// and never writes to it (a server that hangs); it closes them at the
// end of the test.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// postgresWorkerConfig is a cloud worker (site cloud-N) on PostgreSQL
// at pgURL, schema schema, with the mqtt transport on broker and the
// ingest and down pipelines, as newPostgresRig's.
func postgresWorkerConfig(t *testing.T, pgURL, schema, broker string, worker int, connectTimeout time.Duration) string {
	cfg := fmt.Sprintf("site: cloud\nschema: %s\nstorage:\n  cloud: {type: postgres, url: %q, schema: %s, side: cloud, site: cloud-%d, connect_timeout: %s}\n",
		schemaPath(t), pgURL, schema, worker, connectTimeout)
	transport := mqttTransport(broker, fmt.Sprintf("worker-%d", worker), cloudUser, cloudPassword) + "    share_group: iotod\n"
	return cfg + pipelinesOver(transport)
}

// newPostgresRigVia is newPostgresRig with one worker whose PostgreSQL
// (IOTOD_POSTGRES_URL's) is reached through a TCP proxy of the test, and
// a device per site; the schema is dropped at the end.
func newPostgresRigVia(t *testing.T, sites ...string) (*rig, *proxy) {
	t.Helper()
	iotodBin(t) // skips under -short before anything starts
	direct := postgresURL(t)
	u, err := url.Parse(direct)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" || u.Port() == "" {
		t.Fatalf("IOTOD_POSTGRES_URL must be a postgres:// URL with a host and a port for this test (it goes through a proxy); got one that is not (%v)", err)
	}
	schema := freshSchema(t, direct, "e2e")
	px := startProxy(t, u.Host)
	u.Host = px.addr
	r := &rig{t: t, kind: ownProcess, devices: map[string]*node{}, addr: freeAddr(t)}
	r.broker = startNode(t, "broker", brokerOnlyConfig(t, r.addr, sites))
	r.workers = append(r.workers, startNode(t, "worker-1", postgresWorkerConfig(t, u.String(), schema, r.addr, 1, 2*time.Second)))
	for _, s := range sites {
		r.addDevice(s)
	}
	return r, px
}

// processID is n's process id, 0 when it is not running.
func processID(n *node) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// exitedByItself reports whether n's process ended by itself, and how.
func exitedByItself(n *node) (bool, error) {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false, nil
	}
	select {
	case err := <-done:
		done <- err // for kill, which waits on it
		return true, err
	default:
		return false, nil
	}
}

// upOutboxDepth is the depth of the outbox the device's up pipeline
// reports in its status.
func upOutboxDepth(t *testing.T, dev *node) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := dev.client().Status(ctx)
	require.NoError(t, err, "%s: status", dev.name)
	up := pipelineOf(st.Pipelines, "up")
	require.NotNil(t, up, "%s: no up pipeline in its status", dev.name)
	if up.Outbox == nil {
		return 0
	}
	return up.Outbox.Depth
}

// TestPostgresLostMidRun cuts a cloud worker off its PostgreSQL (a TCP
// proxy closes every connection and refuses new ones) for a few seconds
// while a device writes Readings and the cloud's API Commands, then
// brings it back. Meanwhile the worker's applies fail and are retried
// and the device's outbox keeps what is not acknowledged (the cloud's
// writes fail: the load counts them as tried). Afterwards every
// acknowledged write is on the other side once at its latest version,
// the worker is the same process it was, and nothing was dead-lettered:
// a lost database means retries, not rejections.
func TestPostgresLostMidRun(t *testing.T) {
	r, px := newPostgresRigVia(t, "dev-1")
	dev, worker := r.devices["dev-1"], r.workers[0]
	pid := processID(worker)
	require.NotZero(t, pid)

	up, down := readingLoad(t, dev, "dev-1", 2), commandLoad(t, worker, "dev-1", 1)
	time.Sleep(loadPhase)
	require.Positive(t, up.ok.Load(), "the load writes on the device")
	require.Positive(t, down.ok.Load(), "the load writes in the cloud")

	px.down()
	t.Logf("proxy down: PostgreSQL unreachable for the worker")
	eventually(t, 30*time.Second, "the worker logs that its applies fail (the device's batches keep coming)", func() bool {
		return strings.Contains(worker.logText(), "applying to the store fails")
	})
	time.Sleep(time.Second)
	d1 := upOutboxDepth(t, dev)
	acked1 := up.ok.Load()
	time.Sleep(3 * time.Second)
	d2 := upOutboxDepth(t, dev)
	acked2 := up.ok.Load()
	t.Logf("outage: device outbox depth %d then %d; %d device writes acknowledged meanwhile; cloud writes: %d acknowledged, %d failed so far",
		d1, d2, acked2-acked1, down.ok.Load(), down.failed.Load())
	require.Greater(t, acked2, acked1, "the device kept taking writes during the outage")
	assert.Positive(t, d1, "the device's outbox holds the unacknowledged changes during the outage")
	assert.Greater(t, d2, d1, "the device's outbox grows while the cloud's store is unreachable: nothing is acknowledged")
	if gone, err := exitedByItself(worker); gone {
		t.Fatalf("the worker exited during the outage: %v\n%s", err, worker.tail(40))
	}

	px.up()
	t.Logf("proxy up again")
	time.Sleep(loadPhase)
	converge(t, "postgres lost mid-run", dev, worker, up, down)

	gone, err := exitedByItself(worker)
	require.False(t, gone, "the worker exited after the outage: %v\n%s", err, worker.tail(40))
	require.Equal(t, pid, processID(worker), "the worker is the same process")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = worker.client().Health(ctx)
	require.NoError(t, err, "the worker's API answers after the outage")
	assert.Contains(t, worker.logText(), "applying to the store works again", "the worker logs its recovery")

	// A lost database means retries, never dead letters.
	for _, n := range []*node{worker, dev} {
		for _, m := range []string{"iotod_dead_letters_total", "iotod_rejects_total", "iotod_poison_messages_total"} {
			assert.Zero(t, n.metric(m), "%s: %s: a lost database must cause retries, not dead letters", n.name, m)
		}
		dl, err := n.client().DeadLetters(ctx, 5)
		require.NoError(t, err)
		if !assert.Zero(t, dl.Total, "%s: dead letters after the outage", n.name) {
			for _, l := range dl.DeadLetters {
				t.Logf("%s: dead letter: %+v", n.name, l)
			}
		}
	}
	t.Logf("worker: %v changes in, %v out; device: %v resends", worker.metric("iotod_changes_in_total", `pipeline="ingest"`),
		worker.metric("iotod_changes_out_total", `pipeline="ingest"`), dev.metric("iotod_resends_total"))
}
