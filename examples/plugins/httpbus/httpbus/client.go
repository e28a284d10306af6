package httpbus

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

// Client is a pipeline.Transport that talks to a hub: a device, or a
// cloud worker in another process. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	// ctx ends at Close, ending requests and subscriptions.
	ctx       context.Context
	stop      context.CancelFunc
	connected atomic.Bool

	mu     sync.Mutex
	closed bool
	subs   sync.WaitGroup
}

// NewClient returns a client of the hub at c.URL (a client config from
// Parse). It does not connect until it is used.
func NewClient(c Config) (*Client, error) {
	if c.IsHub() || c.URL == "" {
		return nil, fmt.Errorf("%w: httpbus client: no url", pipeline.ErrInvalid)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultConnectTimeout
	}
	c.URL = strings.TrimSuffix(c.URL, "/")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16 // concurrent publishers reuse connections
	ctx, stop := context.WithCancel(context.Background())
	return &Client{cfg: c, http: &http.Client{Transport: tr}, ctx: ctx, stop: stop}, nil
}

// MaxPayload is the largest payload the client sends.
func (c *Client) MaxPayload() int { return c.cfg.MaxPayload }

// Connected reports whether the last request or stream to the hub worked.
func (c *Client) Connected() bool { return c.connected.Load() }

// Publish posts msg to the hub and returns once the hub's bus took it.
// A payload over MaxPayload is refused with an error wrapping
// pipeline.ErrTooLargeForTransport; the hub's refusals (a bad request, a
// token not allowed) are permanent; other failures may pass on retry.
func (c *Client) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	where := fmt.Sprintf("httpbus publish on %s for %q", ch, site)
	if c.isClosed() {
		return fmt.Errorf("%s: %w", where, pipeline.ErrClosed)
	}
	switch {
	case ch == "" || site == "" || msg == nil:
		return fmt.Errorf("%w: %s: a channel, a site and a message are required", pipeline.ErrInvalid, where)
	case len(msg.Payload) > c.cfg.MaxPayload:
		return fmt.Errorf("%s: %d bytes: %w (%d)", where, len(msg.Payload), pipeline.ErrTooLargeForTransport, c.cfg.MaxPayload)
	case !validUUID(msg.UUID):
		return fmt.Errorf("%w: %s: uuid %q: want 1 to %d printable ASCII characters", pipeline.ErrInvalid, where, msg.UUID, maxUUID)
	}
	md, err := encodeMetadata(msg.Metadata)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", pipeline.ErrInvalid, where, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)() // Close ends it
	resp, err := c.do(ctx, http.MethodPost, "/v1/publish", url.Values{"channel": {string(ch)}, "site": {site}},
		msg.Payload, func(h http.Header) {
			h.Set(headerUUID, msg.UUID)
			if md != "" {
				h.Set(headerMetadata, md)
			}
		})
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer resp.Body.Close()
	return statusError(where, resp)
}

// do sends a request to the hub with the client's token, and records
// whether the hub answered.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, header func(http.Header)) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.URL+path+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	if header != nil {
		header(req.Header)
	}
	resp, err := c.http.Do(req)
	c.connected.Store(err == nil && resp.StatusCode < 500)
	return resp, err
}

// statusError is nil for a 200, else the hub's refusal: 413 wraps
// pipeline.ErrTooLargeForTransport, 400, 401 and 403 are permanent, the
// rest may pass on retry. It reads the hub's text from resp.
func statusError(where string, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // keep the connection
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	err := fmt.Errorf("%s: hub answered %s: %s", where, resp.Status, strings.TrimSpace(string(b)))
	switch resp.StatusCode {
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: %w", pipeline.ErrTooLargeForTransport, err)
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return pipeline.Permanent(err)
	}
	return err
}

// Close ends the subscriptions (their channels close) and requests in
// flight; Publish and Subscribe then fail with pipeline.ErrClosed. It
// waits for the subscriptions to end or ctx to end. A second Close
// returns nil.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()

	c.stop()
	done := make(chan struct{})
	go func() {
		c.subs.Wait()
		close(done)
	}()
	defer c.connected.Store(false)
	defer c.http.CloseIdleConnections()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("httpbus close: waiting for subscriptions: %w", ctx.Err())
	}
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

var (
	_ pipeline.Transport      = (*Client)(nil)
	_ pipeline.PayloadLimiter = (*Client)(nil)
)
