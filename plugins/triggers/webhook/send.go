package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/iotod/iotod/pipeline"
)

const (
	// maxResponse is how much of a response body is read.
	maxResponse = 64 << 10
	// bodyInError is how much of it an error quotes.
	bodyInError = 256
)

// StatusError is a response that was not a 2xx.
type StatusError struct {
	StatusCode int
	msg        string
}

func (e *StatusError) Error() string { return e.msg }

// post sends body, retrying failures worth retrying at most maxRetries
// times, and returns how many requests it made.
func (t *Trigger) post(ctx context.Context, body []byte) (int, error) {
	for attempt := 0; ; attempt++ {
		retryAfter, err := t.attempt(ctx, body)
		switch {
		case err == nil:
			return attempt + 1, nil
		case ctx.Err() != nil, pipeline.IsPermanent(err):
			return attempt + 1, err
		case attempt >= t.maxRetries:
			return attempt + 1, fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
		}
		delay := t.backoff(attempt, retryAfter)
		t.log.DebugContext(ctx, "webhook retry", "url", t.target, "attempt", attempt+1, "delay", delay, "error", err)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return attempt + 1, fmt.Errorf("%w (retry stopped: %w)", err, ctx.Err())
		case <-timer.C:
		}
	}
}

// attempt makes one request. It returns the wait a 429 or 503 asked for
// in Retry-After, and an error for anything but a 2xx: permanent for a
// request that cannot succeed as it is.
func (t *Trigger) attempt(ctx context.Context, body []byte) (retryAfter time.Duration, err error) {
	reqCtx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return 0, pipeline.Permanent(fmt.Errorf("webhook trigger: POST %s: %w", t.target, err))
	}
	req.Header = t.headers.Clone()
	if len(t.secret) > 0 {
		sign(req.Header, t.secret, body, time.Now())
	}
	resp, err := t.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, query and all
		}
		switch {
		case ctx.Err() != nil:
			return 0, fmt.Errorf("webhook trigger: POST %s: stopped: %w", t.target, ctx.Err())
		case errors.Is(reqCtx.Err(), context.DeadlineExceeded):
			return 0, fmt.Errorf("webhook trigger: POST %s: no response within %s: %w", t.target, t.timeout, context.DeadlineExceeded)
		}
		return 0, fmt.Errorf("webhook trigger: POST %s: %w", t.target, err)
	}
	defer func() { _ = resp.Body.Close() }()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return 0, nil
	}
	msg := fmt.Sprintf("webhook trigger: POST %s: %s", t.target, resp.Status)
	if s := strings.TrimSpace(pipeline.Truncate(string(text), bodyInError)); s != "" {
		msg += ": " + s
	}
	if code >= 300 && code < 400 {
		msg += " (redirects are not followed; Location: " + resp.Header.Get("Location") + ")"
	}
	serr := &StatusError{StatusCode: code, msg: msg}
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 {
		return retryAfterOf(resp.Header.Get("Retry-After"), time.Now()), serr
	}
	return 0, pipeline.Permanent(serr)
}

// backoff is the wait before retry attempt+1: what Retry-After asked for,
// or a random time up to a ceiling doubling from retryDelay (full
// jitter); max_retry_delay caps both.
func (t *Trigger) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, t.maxRetryDelay)
	}
	ceiling := t.retryDelay
	for range attempt {
		if ceiling >= t.maxRetryDelay/2 {
			ceiling = t.maxRetryDelay
			break
		}
		ceiling *= 2
	}
	return t.jitter(min(ceiling, t.maxRetryDelay))
}

// fullJitter is a random time from 0 to d.
func fullJitter(d time.Duration) time.Duration { return rand.N(d + 1) }

// retryAfterOf reads a Retry-After value, seconds or an HTTP date; zero
// when absent, invalid or past.
func retryAfterOf(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return max(time.Duration(s)*time.Second, 0)
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0)
	}
	return 0
}
