package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
)

// A webhook trigger on the cloud's ingest pipeline, through real
// processes: while the endpoint answers 503, the device's changes are
// still applied and acknowledged (a sync returns); the deliveries wait in
// the queue, survive a SIGKILL of the process and go out once the
// endpoint works; a batch past its attempts is dead (iotod status says
// so, iotod deadletters lists them) until replayed with iotod deadletters
// replay. Each change reaches the
// endpoint once here (delivery is at least once in general).
func TestWebhookTriggerAcrossAKill(t *testing.T) {
	bin := buildIotod(t)
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	got := map[string]int{} // email -> deliveries
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		var body struct {
			Changes []struct {
				Model string          `json:"model"`
				Item  json.RawMessage `json:"item"`
			} `json:"changes"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range body.Changes {
			var item map[string]any
			_ = json.Unmarshal(c.Item, &item)
			got[fmt.Sprint(item["email"])]++
		}
	}))
	t.Cleanup(srv.Close)
	configWith := func(attempts int) string {
		return strings.Replace(allInOneConfig, "    to: storage/cloud\n", fmt.Sprintf(`    to: storage/cloud
    trigger_delivery: {attempts: %d, retry_delay: 20ms, max_retry_delay: 50ms, timeout: 2s}
    triggers:
      - webhook: {url: %q, max_retries: 0, timeout: 1s}
`, attempts, srv.URL), 1)
	}
	cfg := writeConfig(t, configWith(1000))
	ctx := context.Background()
	queue := func(d *daemon) (queued, dead int) {
		c, err := api.NewClient(d.addr, "")
		require.NoError(t, err)
		list, err := c.Triggers(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, "ingest:webhook", list[0].Name)
		return list[0].Queued, list[0].Dead
	}
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}

	// 1. The endpoint is down: the changes are applied and acknowledged,
	// their deliveries wait in the queue, and survive a SIGKILL.
	d := startDaemon(t, bin, cfg)
	client, err := api.NewClient(d.addr, "")
	require.NoError(t, err)
	for i := range 20 {
		_, err := client.Create(ctx, "User", db.Item{"accountId": "acme", "email": fmt.Sprintf("u%02d@x.io", i), "age": i}, nil)
		require.NoError(t, err)
	}
	require.NoError(t, client.Sync(ctx, 10*time.Second), "replication does not wait for the webhook")
	queued, _ := queue(d)
	assert.Equal(t, 20, queued, "the deliveries wait")
	require.NoError(t, d.cmd.Process.Kill())
	<-d.done
	assert.Zero(t, delivered(), "nothing delivered while the endpoint was down")

	down.Store(false)
	d2 := startDaemon(t, bin, cfg)
	require.Eventually(t, func() bool { return delivered() == 20 }, 15*time.Second, 20*time.Millisecond,
		"every change delivered after the restart")
	require.Eventually(t, func() bool { q, _ := queue(d2); return q == 0 }, 5*time.Second, 20*time.Millisecond)
	out := runCLI(t, bin, "triggers", "--addr", d2.addr)
	require.Zero(t, out.code, out.stderr)
	assert.Regexp(t, `ingest:webhook\s+0\s+0`, out.stdout)
	d2.stop(t)

	// 2. With 2 attempts, a batch the endpoint keeps refusing is set aside
	// as dead; iotod status says so; a replay delivers it.
	down.Store(true)
	require.NoError(t, os.WriteFile(cfg, []byte(configWith(2)), 0o600))
	d3 := startDaemon(t, bin, cfg)
	c3, err := api.NewClient(d3.addr, "")
	require.NoError(t, err)
	for i := 20; i < 25; i++ {
		_, err := c3.Create(ctx, "User", db.Item{"accountId": "acme", "email": fmt.Sprintf("u%02d@x.io", i), "age": i}, nil)
		require.NoError(t, err)
	}
	require.NoError(t, c3.Sync(ctx, 10*time.Second))
	require.Eventually(t, func() bool { q, dead := queue(d3); return q == 0 && dead == 5 }, 10*time.Second, 20*time.Millisecond, "five dead")
	st := runCLI(t, bin, "status", "--addr", d3.addr)
	assert.Contains(t, st.stdout, "trigger ingest:webhook: 5 dead deliveries")
	dl := runCLI(t, bin, "deadletters", "--addr", d3.addr)
	require.Zero(t, dl.code, dl.stderr)
	assert.Equal(t, 5, strings.Count(dl.stdout, "trigger ingest:webhook: 2 attempts"), "each dead delivery listed with its reason:\n%s", dl.stdout)
	assert.Contains(t, dl.stdout, "503")
	assert.Regexp(t, `ingest\s+cli-test\s+User\s+`, dl.stdout)
	down.Store(false)
	rp := runCLI(t, bin, "deadletters", "replay", "ingest:webhook", "--addr", d3.addr)
	require.Zero(t, rp.code, rp.stderr)
	assert.Contains(t, rp.stdout, "ingest:webhook: 5 deliveries queued again")
	require.Eventually(t, func() bool { return delivered() == 25 }, 10*time.Second, 20*time.Millisecond, "replayed")
	mu.Lock()
	defer mu.Unlock()
	for email, n := range got {
		assert.Equal(t, 1, n, "%s delivered once", email)
	}
}
