package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/runner"
)

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

func TestSyncStatusMetricsWithPipelines(t *testing.T) {
	ctx := context.Background()
	plan, _ := testPlan(t, "dev1", true)
	r := startRunner(t, plan)
	url, c := serveRunner(t, r, "dev1")
	for i := range 5 {
		_, err := c.Create(ctx, "Status", db.Item{"temp": i}, nil)
		require.NoError(t, err)
	}
	code, body := post(t, url+"/v1/sync?timeout=10s", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"synced":true}`, body)
	res, err := r.DB("cloud").Find(ctx, "Status", db.Item{}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 5, "a sync returns once the cloud has the changes")
	require.NoError(t, c.Sync(ctx, 0), "the client's default timeout")

	st, err := c.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "dev1", st.Site)
	assert.Nil(t, st.Outbox, "with pipelines, each sender reports its outbox")
	require.Len(t, st.Pipelines, 2)
	in, up := st.Pipelines[0], st.Pipelines[1]
	assert.Equal(t, "ingest", in.Name)
	assert.Equal(t, "up", up.Name)
	assert.Equal(t, pipeline.Up, up.Direction)
	assert.Equal(t, "storage/local", up.From)
	assert.Equal(t, "transport/bus", up.To)
	assert.Equal(t, "running", up.State)
	assert.Zero(t, up.InFlight)
	assert.WithinDuration(t, time.Now(), up.LastAck, time.Minute, "the sync's ack")

	code, hdr, text := get(t, url+"/metrics")
	require.Equal(t, http.StatusOK, code, text)
	assert.Contains(t, hdr.Get("Content-Type"), "text/plain")
	assert.Contains(t, text, `iotod_changes_in_total{pipeline="up"} 5`)
	assert.Contains(t, text, `iotod_changes_out_total{pipeline="ingest"} 5`)

	dl, err := c.DeadLetters(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, &api.DeadLetters{DeadLetters: []runner.DeadLetter{}, Total: 0}, dl)
}

func TestDeadLettersNewestFirst(t *testing.T) {
	ctx := context.Background()
	plan, bus := testPlan(t, "dev1", true)
	r := startRunner(t, plan)
	url, c := serveRunner(t, r, "dev1")
	bad := []string{`{not json`, `{"v":99,"id":"b1","changes":[]}`,
		`{"v":1,"id":"b2","changes":[{"model":"Status","op":"explode","key":{"pk":"x","sk":"y"}}]}`}
	for i, p := range bad {
		require.NoError(t, bus.Publish(ctx, pipeline.ChanUp, "dev1", message.NewMessage(fmt.Sprint("bad", i), []byte(p))))
	}
	require.Eventually(t, func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.DeadLetters == 3
	}, 10*time.Second, 20*time.Millisecond, "/v1/status counts the dead letters")

	dl, err := c.DeadLetters(ctx, 2)
	require.NoError(t, err)
	assert.EqualValues(t, 3, dl.Total)
	require.Len(t, dl.DeadLetters, 2)
	assert.Contains(t, dl.DeadLetters[0].Reject.Reason, `unknown op "explode"`, "newest first")
	assert.Contains(t, dl.DeadLetters[1].Reject.Reason, "unknown protocol version 99")
	assert.Equal(t, "ingest", dl.DeadLetters[0].Pipeline)

	code, _, body := get(t, url+"/v1/deadletters?limit=0")
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"dead_letters":[],"total":3}`, body)
	all, err := c.DeadLetters(ctx, 0)
	require.NoError(t, err)
	assert.Len(t, all.DeadLetters, 3)
}

// logBuffer is a log's output, written by the server's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSyncTimeout syncs a change nobody will ever acknowledge: the up
// pipeline has no receiver. The caller's timeout, or the caller giving
// up, is no server error: it is counted, not logged as an error.
func TestSyncTimeout(t *testing.T) {
	ctx := context.Background()
	plan, _ := testPlan(t, "dev1", false)
	r := startRunner(t, plan)
	logs := &logBuffer{}
	url, c := serveRunnerLogged(t, r, "dev1", slog.New(slog.NewTextHandler(logs, nil)))
	_, err := c.Create(ctx, "Status", db.Item{"temp": 1}, nil)
	require.NoError(t, err)

	start := time.Now()
	code, body := post(t, url+"/v1/sync?timeout=200ms", "{}")
	assert.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, http.StatusGatewayTimeout, code, body)
	var eb struct{ Error, Code string }
	require.NoError(t, json.Unmarshal([]byte(body), &eb))
	assert.Equal(t, api.CodeTimeout, eb.Code)
	assert.Contains(t, eb.Error, "not every change was acknowledged within 200ms")
	assert.Contains(t, eb.Error, "pipeline up")
	assert.NotContains(t, eb.Error, "\n")

	err = c.Sync(ctx, 200*time.Millisecond)
	var ae *api.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusGatewayTimeout, ae.Status)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// The caller gives up before the sync's own timeout.
	gone, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	require.Error(t, c.Sync(gone, time.Minute))
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		_, _, text := get(t, url+"/metrics")
		assert.Contains(ct, text, `iotod_forced_syncs_total{result="timeout"} 2`)
		assert.Contains(ct, text, `iotod_forced_syncs_total{result="canceled"} 1`)
	}, 5*time.Second, 20*time.Millisecond, "the syncs are counted by result")
	assert.NotContains(t, logs.String(), "level=ERROR", "a sync's timeout is not a server error")

	require.Eventually(t, func() bool {
		st, err := c.Status(ctx)
		require.NoError(t, err)
		require.Len(t, st.Pipelines, 1)
		up := st.Pipelines[0]
		return up.Outbox != nil && up.Outbox.Depth == 1 && up.InFlight == 1 && up.LastAck.IsZero()
	}, 5*time.Second, 50*time.Millisecond, "the change waits in the outbox, sent and unacknowledged")
}

func TestWithoutPipelines(t *testing.T) {
	ctx := context.Background()
	url, c := startHTTP(t)
	_, err := c.Create(ctx, "Status", db.Item{"temp": 1}, nil)
	require.NoError(t, err)

	code, body := post(t, url+"/v1/sync", "")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.JSONEq(t, `{"error":"no pipelines are configured: there is nothing to sync","code":"unavailable"}`, body)
	err = c.Sync(ctx, time.Second)
	assert.ErrorIs(t, err, pipeline.ErrClosed)

	st, err := c.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "test-site", st.Site)
	assert.Empty(t, st.Pipelines)
	require.NotNil(t, st.Outbox, "the local store's outbox")
	assert.EqualValues(t, 1, st.Outbox.Depth)
	code, _, body = get(t, url+"/v1/status")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"pipelines":[]`)

	code, _, body = get(t, url+"/metrics")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, `"code":"not_found"`)

	dl, err := c.DeadLetters(ctx, 5)
	require.NoError(t, err)
	assert.Empty(t, dl.DeadLetters)
	assert.Zero(t, dl.Total)
}

func TestPipelineEndpointsRejectBadRequests(t *testing.T) {
	plan, _ := testPlan(t, "dev1", true)
	url, _ := serveRunner(t, startRunner(t, plan), "dev1")
	tests := []struct {
		method, path, ctype, body string
		status                    int
		msg                       string
	}{
		{"POST", "/v1/sync?timeout=11m", "application/json", "", 400, "timeout: want a duration above 0 and at most 10m0s"},
		{"POST", "/v1/sync?timeout=soon", "application/json", "", 400, `got "soon"`},
		{"POST", "/v1/sync?timeout=0s", "application/json", "", 400, "above 0"},
		{"POST", "/v1/sync?timeout=1s&timeout=2s", "application/json", "", 400, "given 2 times"},
		{"POST", "/v1/sync?wait=1s", "application/json", "", 400, `unknown query parameter "wait" (known: timeout)`},
		{"POST", "/v1/sync", "", "", 415, "must be JSON"},
		{"POST", "/v1/sync", "application/json", `{"timeout":"1s"}`, 400, "unknown field"},
		{"GET", "/v1/sync", "", "", 405, "method GET is not allowed"},
		{"GET", "/v1/status?x=1", "", "", 400, "this endpoint takes none"},
		{"POST", "/v1/status", "application/json", "", 405, "use GET"},
		{"GET", "/v1/deadletters?limit=-1", "", "", 400, "want an integer from 0 to 1000"},
		{"GET", "/v1/deadletters?limit=1001", "", "", 400, "want an integer from 0 to 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, url+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			code, body := do(t, req)
			assert.Equal(t, tt.status, code, body)
			var eb struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(body), &eb), body)
			assert.Contains(t, eb.Error, tt.msg)
		})
	}
}

func TestMetricsNeedALoopbackHost(t *testing.T) {
	plan, _ := testPlan(t, "dev1", true)
	url, _ := serveRunner(t, startRunner(t, plan), "dev1")
	req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	require.NoError(t, err)
	req.Host = "evil.example:80"
	code, body := do(t, req)
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, body, `"code":"forbidden"`)
}
