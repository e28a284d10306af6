package webhook

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

func TestRetriesServerErrorsThenSucceeds(t *testing.T) {
	srv, rec := serve(t, status(500, "busy"), status(503, "busy"), status(200, "ok"))
	tr := newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", retry_delay: 1ms, max_retry_delay: 5ms, secret: k}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	got := rec.requests()
	require.Len(t, got, 3)
	for _, r := range got {
		require.Equal(t, string(got[0].Body), string(r.Body), "the same body each time")
		verify(t, "k", r)
	}
}

func TestGivesUpAfterMaxRetries(t *testing.T) {
	srv, rec := serve(t, status(502, "bad gateway, try later"))
	tr := newTrigger(t, pipeline.Settings{}, "{url: '"+srv.URL+"/x?token=secret', max_retries: 2, retry_delay: 1ms, max_retry_delay: 2ms}")
	err := tr.Fire(t.Context(), "ingest", changes())
	require.Len(t, rec.requests(), 3, "the first request and two retries")
	require.ErrorContains(t, err, "POST "+srv.URL+"/x: 502 Bad Gateway: bad gateway, try later (gave up after 3 attempts)")
	require.NotContains(t, err.Error(), "token=secret", "the query is not shown")
	require.False(t, pipeline.IsPermanent(err), "iotod's queue tries again later")
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 502, se.StatusCode)
}

func TestClientErrorsArePermanent(t *testing.T) {
	for _, tc := range []struct {
		reply func(http.ResponseWriter, *http.Request)
		want  string
	}{
		{status(400, `{"error":"no such model"}`), `400 Bad Request: {"error":"no such model"}`},
		{status(401, ""), "401 Unauthorized"},
		{status(302, "", "Location", "http://elsewhere.test/"), "302 Found (redirects are not followed; Location: http://elsewhere.test/)"},
	} {
		srv, rec := serve(t, tc.reply, status(200, ""))
		tr := newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", retry_delay: 1ms, max_retry_delay: 1ms}")
		err := tr.Fire(t.Context(), "ingest", changes())
		require.ErrorContains(t, err, tc.want)
		require.True(t, pipeline.IsPermanent(err), "%v", err)
		require.Len(t, rec.requests(), 1, "not retried")
	}
}

func TestRetryableClientErrors(t *testing.T) {
	for _, code := range []int{408, 429} {
		srv, rec := serve(t, status(code, ""), status(200, ""))
		tr := newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", retry_delay: 1ms, max_retry_delay: 1ms}")
		require.NoError(t, tr.Fire(t.Context(), "ingest", changes()), "%d", code)
		require.Len(t, rec.requests(), 2)
	}
}

func TestServerThatNeverAnswersTimesOut(t *testing.T) {
	stop := make(chan struct{})
	hang := func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}
	srv, rec := serve(t, hang)
	defer close(stop) // before srv.Close, which waits for the handlers
	tr := newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", timeout: 200ms, max_retries: 1, retry_delay: 1ms, max_retry_delay: 1ms}")
	start := time.Now()
	err := tr.Fire(t.Context(), "ingest", changes())
	took := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "no response within 200ms")
	require.ErrorContains(t, err, "gave up after 2 attempts")
	require.Len(t, rec.requests(), 2)
	require.GreaterOrEqual(t, took, 400*time.Millisecond)
	require.Less(t, took, 3*time.Second)
}

func TestCancelStopsRetriesAtOnce(t *testing.T) {
	srv, rec := serve(t, status(500, "down"))
	waiting := make(chan struct{}, 10)
	log := slog.New(onMessage{msg: "webhook retry", seen: waiting})
	tr := newTrigger(t, pipeline.Settings{Logger: log}, "{url: "+srv.URL+", retry_delay: 1m, max_retry_delay: 1m}")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tr.Fire(ctx, "ingest", changes()) }()
	<-waiting // the first request failed, and the retry waits
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "500 Internal Server Error")
	case <-time.After(5 * time.Second):
		t.Fatal("Fire went on after its ctx was cancelled")
	}
	require.Len(t, rec.requests(), 1)
}

func TestCancelStopsARequest(t *testing.T) {
	stop := make(chan struct{})
	srv, rec := serve(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	defer close(stop)
	rec.arrived = make(chan struct{}, 10)
	tr := newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", timeout: 1m}")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tr.Fire(ctx, "ingest", changes()) }()
	<-rec.arrived
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("the request went on after the ctx was cancelled")
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	srv, rec := serve(t, status(429, "slow down", "Retry-After", "1"), status(200, ""))
	tr := newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", retry_delay: 1ms, max_retry_delay: 5s}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	got := rec.requests()
	require.Len(t, got, 2)
	gap := got[1].At.Sub(got[0].At)
	require.GreaterOrEqual(t, gap, time.Second, "waited as asked, not retry_delay")
	require.Less(t, gap, 4*time.Second)

	// A Retry-After longer than max_retry_delay waits max_retry_delay.
	srv, rec = serve(t, status(503, "", "Retry-After", "3600"), status(200, ""))
	tr = newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", retry_delay: 1ms, max_retry_delay: 300ms}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	got = rec.requests()
	require.Len(t, got, 2)
	gap = got[1].At.Sub(got[0].At)
	require.GreaterOrEqual(t, gap, 300*time.Millisecond)
	require.Less(t, gap, 3*time.Second)
}

func TestBackoff(t *testing.T) {
	tr := &Trigger{retryDelay: 200 * time.Millisecond, maxRetryDelay: 5 * time.Second, jitter: func(d time.Duration) time.Duration { return d }}
	var ceilings []time.Duration
	for attempt := range 7 {
		ceilings = append(ceilings, tr.backoff(attempt, 0))
	}
	require.Equal(t, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}, ceilings)
	require.Equal(t, 2*time.Second, tr.backoff(0, 2*time.Second), "Retry-After")
	require.Equal(t, 5*time.Second, tr.backoff(0, time.Hour), "Retry-After, capped")
	require.Equal(t, 5*time.Second, tr.backoff(1000, 0), "no overflow")

	tr.jitter = fullJitter
	for range 1000 {
		d := tr.backoff(2, 0)
		require.True(t, d >= 0 && d <= 800*time.Millisecond, "%s", d)
	}
}

func TestRetryAfterOf(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.Equal(t, 7*time.Second, retryAfterOf("7", now))
	require.Equal(t, 90*time.Second, retryAfterOf(now.Add(90*time.Second).Format(http.TimeFormat), now))
	require.Zero(t, retryAfterOf(now.Add(-time.Minute).Format(http.TimeFormat), now))
	require.Zero(t, retryAfterOf("", now))
	require.Zero(t, retryAfterOf("soon", now))
	require.Zero(t, retryAfterOf("-3", now))
}

func TestNetworkErrorIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	tr := newTrigger(t, pipeline.Settings{}, "{url: "+url+", max_retries: 1, retry_delay: 1ms, max_retry_delay: 1ms}")
	err := tr.Fire(t.Context(), "ingest", changes())
	require.ErrorContains(t, err, "gave up after 2 attempts")
	require.False(t, pipeline.IsPermanent(err))
	require.False(t, errors.Is(err, context.DeadlineExceeded))
}

// onMessage is a slog handler telling when a message is logged.
type onMessage struct {
	msg  string
	seen chan<- struct{}
}

func (onMessage) Enabled(context.Context, slog.Level) bool { return true }
func (h onMessage) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.seen <- struct{}{}
	}
	return nil
}
func (h onMessage) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h onMessage) WithGroup(string) slog.Handler      { return h }
