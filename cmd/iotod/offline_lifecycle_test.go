package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
)

// offlineDevice is a device whose mqtt transport points at a loopback port
// nobody listens on.
const offlineDevice = `site: cli-test
schema: schema.json5
storage:
  local: {type: badger, path: dev, durability: sync}
transports:
  cloud:
    type: mqtt
    url: mqtt://%s
    session_dir: mqtt-session
    connect_timeout: %s
pipelines:
  up:
    from: storage/local
    stages: [policy, {batch: {delay: 20ms}}]
    to: transport/cloud
  apply:
    from: transport/cloud
    stages: [policy]
    to: storage/local
api:
  listen: 127.0.0.1:0
`

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// lockedBuffer is a bytes.Buffer safe to read while the daemon writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// launch runs `iotod run` with args and returns as soon as its "serving"
// line names the API's address, or fails the test after limit.
func launch(t *testing.T, bin string, limit time.Duration, args ...string) (cmd *exec.Cmd, addr string, done <-chan error, stderr *lockedBuffer) {
	t.Helper()
	cmd = exec.Command(bin, append([]string{"run"}, args...)...)
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	stderr = &lockedBuffer{}
	exited := make(chan error, 1)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case addr = <-found:
	case err := <-exited:
		t.Fatalf("iotod run exited: %v\n%s", err, stderr)
	case <-time.After(limit):
		t.Fatalf("iotod run did not serve within %s:\n%s", limit, stderr)
	}
	return cmd, addr, exited, stderr
}

// A device that boots while its broker is unreachable serves its local
// API at once: health, a create and a get answer within 2s of the
// process's start. Its pipelines run and show as not connected, and
// SIGTERM stops it promptly, without waiting out the drain timeout for a
// change that cannot be sent.
func TestOfflineDeviceServesAtOnce(t *testing.T) {
	bin := buildIotod(t)
	cfg := writeConfig(t, fmt.Sprintf(offlineDevice, closedPort(t), "10s"))
	t0 := time.Now()
	cmd, addr, done, stderr := launch(t, bin, 2*time.Second, "-c", cfg)
	client, err := api.NewClient(addr, "")
	require.NoError(t, err)
	ctx, cancel := context.WithDeadline(context.Background(), t0.Add(2*time.Second))
	defer cancel()
	h, err := client.Health(ctx)
	require.NoError(t, err, "health within 2s of start")
	require.Equal(t, "ok", h.Status)
	_, err = client.Create(ctx, "User", db.Item{"accountId": "acme", "email": "a@x.io", "name": "offline"}, nil)
	require.NoError(t, err, "create within 2s of start")
	got, err := client.Get(ctx, "User", db.Item{"accountId": "acme", "email": "a@x.io"}, nil)
	require.NoError(t, err, "get within 2s of start")
	require.Equal(t, "offline", got["name"])

	// The transport knows the broker is unreachable, so the pipelines
	// start at once (they subscribe when the connection comes), and show
	// as not connected.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, err := client.Status(context.Background())
		if !assert.NoError(c, err) || !assert.Len(c, st.Pipelines, 2) {
			return
		}
		for _, p := range st.Pipelines {
			if assert.NotNil(c, p.Connected, p.Name) {
				assert.False(c, *p.Connected, "%s shows as not connected", p.Name)
			}
			assert.Equal(c, "running", p.State, "%s runs while the broker is unreachable", p.Name)
		}
	}, 3*time.Second, 50*time.Millisecond)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "a clean exit:\n%s", stderr)
	case <-time.After(5 * time.Second):
		t.Fatalf("iotod run did not stop within 5s of SIGTERM:\n%s", stderr)
	}
}

// With its pipelines started and a change waiting for an ack that cannot
// come, an offline device still exits within --drain-timeout (plus a few
// seconds) of SIGTERM, and the change stays in its outbox.
func TestOfflineDeviceExitsWithinTheDrainTimeout(t *testing.T) {
	bin := buildIotod(t)
	cfg := writeConfig(t, fmt.Sprintf(offlineDevice, closedPort(t), "300ms"))
	cmd, addr, done, stderr := launch(t, bin, 20*time.Second, "-c", cfg, "--drain-timeout", "1s")
	client, err := api.NewClient(addr, "")
	require.NoError(t, err)
	ctx := context.Background()
	_, err = client.Create(ctx, "User", db.Item{"accountId": "acme", "email": "b@x.io", "name": "waits"}, nil)
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, err := client.Status(ctx)
		if !assert.NoError(c, err) {
			return
		}
		for _, p := range st.Pipelines {
			assert.NotEqual(c, "starting", p.State, p.Name)
		}
	}, 15*time.Second, 50*time.Millisecond, "the pipelines start while the broker is unreachable")

	t0 := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "a clean exit:\n%s", stderr)
	case <-time.After(1*time.Second + 4*time.Second):
		t.Fatalf("iotod run did not stop within --drain-timeout + 4s of SIGTERM:\n%s", stderr)
	}
	t.Logf("stopped %s after SIGTERM", time.Since(t0).Round(time.Millisecond))
	require.Contains(t, stderr.String(), "unacknowledged changes stay in their outboxes")
}

// A real configuration error still fails start-up, at once and with its
// reason: here the mqtt transport's CA file cannot be read.
func TestUnreadableTLSFileFailsStartUp(t *testing.T) {
	bin := buildIotod(t)
	body := strings.Replace(fmt.Sprintf(offlineDevice, closedPort(t), "10s"), "url: mqtt://", "tls: {ca_file: missing-ca.pem}\n    url: mqtts://", 1)
	cfg := writeConfig(t, body)
	t0 := time.Now()
	res := runCLI(t, bin, "run", "-c", cfg)
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "transport/cloud")
	require.Contains(t, res.stderr, "missing-ca.pem")
	require.Less(t, time.Since(t0), 10*time.Second, "no wait for a connection")
	require.NotContains(t, res.stderr, "iotod serving", "the API never served")
}
