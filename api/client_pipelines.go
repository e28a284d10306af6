package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/iotod/iotod/runner"
)

// Sync calls POST /v1/sync: it returns once every change committed before
// the call is acknowledged. timeout bounds the wait on the server (0: its
// default, DefaultSyncTimeout); when it passes first the error is an
// *Error with Code CodeTimeout, which matches context.DeadlineExceeded.
func (c *Client) Sync(ctx context.Context, timeout time.Duration) error {
	path := "/v1/sync"
	wait := DefaultSyncTimeout
	if timeout > 0 {
		path += "?timeout=" + url.QueryEscape(timeout.String())
		wait = timeout
	}
	// The server answers within timeout; leave it time to say so.
	hc := *c.http
	hc.Timeout = wait + 30*time.Second
	var out Synced
	return c.doWith(ctx, &hc, http.MethodPost, path, struct{}{}, &out)
}

// Status calls GET /v1/status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// DeadLetters calls GET /v1/deadletters for at most limit letters, newest
// first (limit 0: the server's default, DefaultDeadLetterLimit).
func (c *Client) DeadLetters(ctx context.Context, limit int) (*DeadLetters, error) {
	path := "/v1/deadletters"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out DeadLetters
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Triggers calls GET /v1/triggers.
func (c *Client) Triggers(ctx context.Context) ([]runner.TriggerStatus, error) {
	var out Triggers
	if err := c.do(ctx, http.MethodGet, "/v1/triggers", nil, &out); err != nil {
		return nil, err
	}
	return out.Triggers, nil
}

// ReplayTriggers calls POST /v1/triggers/replay: trigger's dead deliveries
// are queued again; it returns how many.
func (c *Client) ReplayTriggers(ctx context.Context, trigger string) (int, error) {
	var out Replayed
	if err := c.do(ctx, http.MethodPost, "/v1/triggers/replay", ReplayRequest{Trigger: trigger}, &out); err != nil {
		return 0, err
	}
	return out.Replayed, nil
}

// Reload calls POST /v1/reload: the running iotod re-reads its
// configuration and applies it. The error of a refused reload says why
// (the file and line of an invalid config, or what needs a restart).
func (c *Client) Reload(ctx context.Context) (*Reload, error) {
	hc := *c.http
	hc.Timeout = reloadTimeout + 30*time.Second
	var out Reload
	if err := c.doWith(ctx, &hc, http.MethodPost, "/v1/reload", struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
