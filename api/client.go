package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// Client calls a running iotod's HTTP/JSON API.
type Client struct {
	base string
	http *http.Client
	// Storage names the store the model operations address ("": the
	// device's local store).
	Storage string
}

// NewClient returns a client of the API at addr ("http://127.0.0.1:7400"
// or "127.0.0.1:7400"), or, when socket is not empty, at that unix socket.
func NewClient(addr, socket string) (*Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the API is local: never go through a proxy
	c := &Client{http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
	if socket != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
		c.base = "http://localhost"
		return c, nil
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("api client: address %q: want http://host:port", addr)
	}
	c.base = strings.TrimSuffix(u.String(), "/")
	return c, nil
}

// Error is an error response of the API.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the error code (CodeInvalid, CodeNotFound, ...).
	Code string
	// Message is the server's message.
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the pipeline sentinel matching the error code, so
// errors.Is(err, pipeline.ErrNotFound) works across the API.
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeInvalid, CodeUnsupportedMedia, CodeMethodNotAllowed:
		return pipeline.ErrInvalid
	case CodeNotFound:
		return pipeline.ErrNotFound
	case CodeExists:
		return pipeline.ErrExists
	case CodeConditionFailed:
		return pipeline.ErrConditionFailed
	case CodeTooLarge:
		return pipeline.ErrTooLarge
	case CodeUnavailable:
		return pipeline.ErrClosed
	case CodeTimeout:
		return context.DeadlineExceeded
	}
	return nil
}

// Health calls GET /v1/health.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	if err := c.do(ctx, http.MethodGet, "/v1/health", nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Create creates an item.
func (c *Client) Create(ctx context.Context, model string, props db.Item, p *db.Params) (db.Item, error) {
	return c.itemOp(ctx, "create", model, props, p)
}

// Get reads one item.
func (c *Client) Get(ctx context.Context, model string, props db.Item, p *db.Params) (db.Item, error) {
	return c.itemOp(ctx, "get", model, props, p)
}

// Find reads a page of items.
func (c *Client) Find(ctx context.Context, model string, props db.Item, p *db.Params) (*db.Result, error) {
	var res db.Result
	if err := c.modelOp(ctx, "find", model, props, p, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Update changes an existing item.
func (c *Client) Update(ctx context.Context, model string, props db.Item, p *db.Params) (db.Item, error) {
	return c.itemOp(ctx, "update", model, props, p)
}

// Upsert creates or changes an item.
func (c *Client) Upsert(ctx context.Context, model string, props db.Item, p *db.Params) (db.Item, error) {
	return c.itemOp(ctx, "upsert", model, props, p)
}

// Remove removes items and returns how many.
func (c *Client) Remove(ctx context.Context, model string, props db.Item, p *db.Params) (int, error) {
	var out Removed
	err := c.modelOp(ctx, "remove", model, props, p, &out)
	return out.Removed, err
}

// Batch runs independent writes.
func (c *Client) Batch(ctx context.Context, ops []db.WriteOp) ([]db.BatchResult, error) {
	var out BatchResponse
	err := c.do(ctx, http.MethodPost, "/v1/batch", BatchRequest{Ops: ops}, &out)
	return out.Results, err
}

// Transact runs writes all or nothing.
func (c *Client) Transact(ctx context.Context, ops []db.WriteOp) ([]db.Item, error) {
	var out TransactResponse
	err := c.do(ctx, http.MethodPost, "/v1/transact", BatchRequest{Ops: ops}, &out)
	return out.Items, err
}

func (c *Client) itemOp(ctx context.Context, op, model string, props db.Item, p *db.Params) (db.Item, error) {
	var item db.Item
	if err := c.modelOp(ctx, op, model, props, p, &item); err != nil {
		return nil, err
	}
	return item, nil
}

func (c *Client) modelOp(ctx context.Context, op, model string, props db.Item, p *db.Params, out any) error {
	q, err := paramsToQuery(p)
	if err != nil {
		return err
	}
	if c.Storage != "" {
		if q != "" {
			q += "&"
		}
		q += "storage=" + url.QueryEscape(c.Storage)
	}
	path := "/v1/models/" + url.PathEscape(model) + "/" + op
	if q != "" {
		path += "?" + q
	}
	if props == nil {
		props = db.Item{}
	}
	return c.do(ctx, http.MethodPost, path, props, out)
}

// do sends body as JSON and decodes the response into out, numbers as
// json.Number.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return c.doWith(ctx, c.http, method, path, body, out)
}

// doWith is do over hc, for calls that need their own timeout.
func (c *Client) doWith(ctx context.Context, hc *http.Client, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("api client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the iotod API (is iotod run started?): %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if resp.StatusCode >= 300 {
		var eb errorBody
		if err := dec.Decode(&eb); err != nil || eb.Error == "" {
			return &Error{Status: resp.StatusCode, Code: CodeInternal, Message: fmt.Sprintf("%s %s: HTTP %s", method, path, resp.Status)}
		}
		return &Error{Status: resp.StatusCode, Code: eb.Code, Message: eb.Error}
	}
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("decode response of %s %s: %w", method, path, err)
	}
	return nil
}
