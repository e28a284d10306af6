package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/runner"
)

// fakeAPI serves canned answers on the paths of handlers; every request
// it gets is recorded.
func fakeAPI(t *testing.T, handlers map[string]http.HandlerFunc) (string, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	mux := http.NewServeMux()
	for pattern, h := range handlers {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.Method+" "+r.URL.RequestURI())
			mu.Unlock()
			h(w, r)
		})
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// runCmd runs the CLI in this process and returns its stdout and error.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for _, name := range []string{"pipelines", "none", "catchup"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata/status", name+".json"))
			require.NoError(t, err)
			want, err := os.ReadFile(filepath.Join("testdata/status", name+".txt"))
			require.NoError(t, err)
			var st api.Status
			require.NoError(t, json.Unmarshal(in, &st))
			var out bytes.Buffer
			require.NoError(t, printStatus(&out, &st, now))
			assert.Equal(t, string(want), out.String())
		})
	}
}

func TestAge(t *testing.T) {
	tests := map[time.Duration]string{
		-time.Second: "0s", 0: "0s", 999 * time.Millisecond: "0s", 42 * time.Second: "42s",
		185 * time.Second: "3m5s", 2*time.Hour + 10*time.Minute + 59*time.Second: "2h10m",
		99 * time.Hour: "4d3h",
	}
	for d, want := range tests {
		assert.Equal(t, want, age(d), "%s", d)
	}
}

func TestStatusCommand(t *testing.T) {
	body, err := os.ReadFile("testdata/status/pipelines.json")
	require.NoError(t, err)
	url, seen := fakeAPI(t, map[string]http.HandlerFunc{"GET /v1/status": reply(200, string(body))})

	out, err := runCmd(t, "status", "--json", "--addr", url)
	require.NoError(t, err)
	var got, want api.Status
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.NoError(t, json.Unmarshal(body, &want))
	assert.Equal(t, want, got, "--json prints the server's status")
	assert.Contains(t, out, `"last_error": "publish on up: not connected"`)

	out, err = runCmd(t, "status", "--addr", url)
	require.NoError(t, err)
	assert.Contains(t, out, "PIPELINE  DIR")
	assert.Contains(t, out, "dead letters: 3")
	assert.Equal(t, []string{"GET /v1/status", "GET /v1/status"}, seen())

	_, err = runCmd(t, "status", "--addr", "127.0.0.1:1")
	require.ErrorContains(t, err, "cannot reach the iotod API")
}

func TestSyncCommand(t *testing.T) {
	url, seen := fakeAPI(t, map[string]http.HandlerFunc{
		"POST /v1/sync": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("timeout") == "2s" {
				reply(200, `{"synced":true}`)(w, r)
				return
			}
			reply(504, `{"error":"sync: not every change was acknowledged within 1s (pipeline up: context deadline exceeded)","code":"timeout"}`)(w, r)
		},
	})
	out, err := runCmd(t, "sync", "--addr", url, "--timeout", "2s")
	require.NoError(t, err)
	assert.Equal(t, "synced\n", out, "off a terminal, no progress line")

	out, err = runCmd(t, "sync", "--addr", url, "--timeout", "1s")
	require.Error(t, err)
	assert.Empty(t, out)
	assert.Equal(t, "sync: not every change was acknowledged within 1s (pipeline up: context deadline exceeded)", err.Error())
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, []string{"POST /v1/sync?timeout=2s", "POST /v1/sync?timeout=1s"}, seen())

	for _, bad := range []string{"0s", "11m", "-1s"} {
		_, err = runCmd(t, "sync", "--addr", url, "--timeout", bad)
		require.ErrorContains(t, err, "--timeout: want a duration above 0 and at most 10m0s", bad)
	}
	assert.Len(t, seen(), 2, "a bad timeout calls nothing")
}

func TestSyncProgress(t *testing.T) {
	var polls atomic.Int64
	url, _ := fakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/status": func(w http.ResponseWriter, r *http.Request) {
			depth := max(0, 30-10*polls.Add(1))
			reply(200, `{"site":"d","pipelines":[
				{"name":"up","from":"storage/local","in_flight":5,"outbox":{"depth":`+strconv.FormatInt(depth, 10)+`}},
				{"name":"backup","from":"storage/local","in_flight":1,"outbox":{"depth":`+strconv.FormatInt(depth, 10)+`}}],"dead_letters":0}`)(w, r)
		},
	})
	c, err := api.NewClient(url, "")
	require.NoError(t, err)
	var out syncBuffer
	stop := showProgress(context.Background(), c, &out, true)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "syncing: 0 of 20 changes left, 6 in flight") },
		5*time.Second, 10*time.Millisecond, "the outbox of local counted once; the most seen is the total")
	stop()
	assert.Contains(t, out.String(), "/20,", "the bar counts the changes sent of the most seen")
	assert.Contains(t, out.String(), "changes/s", "the bar shows the rate")
}

// TestSyncProgressPlain checks the lines a sync prints when not on a
// terminal: none before plainEvery, then counts, rate and time left.
func TestSyncProgressPlain(t *testing.T) {
	var out bytes.Buffer
	p := newSyncProgress(&out, false)
	st := func(depth int64) *api.Status {
		return &api.Status{Status: runner.Status{Pipelines: []runner.PipelineStatus{{From: "storage/local", InFlight: 2, Outbox: &pipeline.OutboxStats{Depth: depth}}}}}
	}
	p.update(st(100), p.start.Add(time.Second))
	assert.Empty(t, out.String(), "a sync shorter than plainEvery prints nothing")
	p.update(st(60), p.start.Add(4*time.Second))
	assert.Equal(t, "syncing: 60 of 100 changes left, 2 in flight, 10 changes/s, about 6s left (4s)\n", out.String())
	p.update(st(50), p.start.Add(5*time.Second))
	assert.NotContains(t, out.String(), "50 of 100", "at most a line every plainEvery")
}
