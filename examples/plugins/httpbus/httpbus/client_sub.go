package httpbus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

// Reconnection backoff of a subscription stream.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// subscription is one Subscribe call: a GET stream to the hub, opened
// again whenever it breaks, until its context ends or the client closes.
type subscription struct {
	c    *Client
	ch   pipeline.Channel
	site string
	out  chan *message.Message

	readyOnce sync.Once
	ready     chan struct{} // closed once a stream is live
	refused   chan error    // the hub refused a stream for good (400, 401, 403)
}

// Subscribe opens a stream of ch's messages for site from the hub. It
// returns once the hub says the subscription is live, or after the
// config's connect_timeout (the subscription goes on connecting in the
// background), or with the hub's error if the hub refuses it (a token
// not allowed for that channel or site). The channel closes when ctx
// ends or the client closes.
func (c *Client) Subscribe(ctx context.Context, ch pipeline.Channel, site string) (<-chan *message.Message, error) {
	where := fmt.Sprintf("httpbus subscribe to %s for %q", ch, site)
	if ch == "" {
		return nil, fmt.Errorf("%w: %s: empty channel", pipeline.ErrInvalid, where)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", where, pipeline.ErrClosed)
	}
	c.subs.Add(1)
	c.mu.Unlock()

	sctx, cancel := context.WithCancel(c.ctx)
	stopAfter := context.AfterFunc(ctx, cancel)
	s := &subscription{c: c, ch: ch, site: site, out: make(chan *message.Message),
		ready: make(chan struct{}), refused: make(chan error, 1)}
	go func() {
		defer c.subs.Done()
		defer close(s.out)
		defer stopAfter()
		defer cancel()
		s.run(sctx)
	}()

	timer := time.NewTimer(c.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-s.ready:
	case err := <-s.refused:
		cancel()
		return nil, err
	case <-timer.C:
	case <-sctx.Done():
	}
	return s.out, nil
}

// run opens streams until ctx ends, waiting between attempts.
func (s *subscription) run(ctx context.Context) {
	backoff := minBackoff
	for attempt := 0; ; attempt++ {
		ready, err := s.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		s.c.connected.Store(false)
		if pipeline.IsPermanent(err) {
			select {
			case s.refused <- err:
			default:
			}
		}
		if ready {
			backoff = minBackoff
		}
		if ready || attempt == 0 { // once per outage, not per attempt
			slog.Warn("httpbus: subscription stream broke, reconnecting", "channel", s.ch, "site", s.site, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// stream runs one GET stream: it waits for the ready frame, then hands
// each message to the consumer and posts its ack or nack to the hub
// before reading the next (the hub sends the next only then). It returns
// whether the stream got ready, and why it ended.
func (s *subscription) stream(ctx context.Context) (ready bool, err error) {
	where := fmt.Sprintf("httpbus subscribe to %s for %q", s.ch, s.site)
	// The stream's request ends with ctx, so the hub ends its side. A hub
	// that does not say ready within connect_timeout is tried again.
	errHung := fmt.Errorf("%s: the hub said nothing within connect_timeout (%s)", where, s.c.cfg.Timeout)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hung := time.AfterFunc(s.c.cfg.Timeout, func() { cancel(errHung) })
	defer hung.Stop()
	defer func() {
		if err != nil && errors.Is(context.Cause(ctx), errHung) {
			err = errHung
		}
	}()
	resp, err := s.c.do(ctx, http.MethodGet, "/v1/subscribe", url.Values{"channel": {string(s.ch)}, "site": {s.site}}, nil, nil)
	if err != nil {
		return false, fmt.Errorf("%s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, statusError(where, resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxFrame(s.c.cfg.MaxPayload))
	var sub string
	for sc.Scan() {
		f, err := decodeFrame(sc.Bytes())
		switch {
		case err != nil:
			return ready, fmt.Errorf("%s: %w", where, err)
		case f.Ready != (sub == ""):
			return ready, fmt.Errorf("%s: stream frame: want one ready frame, first", where)
		case f.Ready:
			hung.Stop()
			sub, ready = f.Sub, true
			s.c.connected.Store(true)
			s.readyOnce.Do(func() { close(s.ready) })
			continue
		}
		m := f.toMessage()
		m.SetContext(ctx)
		select {
		case s.out <- m:
		case <-ctx.Done():
			return ready, nil
		}
		var ack bool
		select {
		case <-m.Acked():
			ack = true
		case <-m.Nacked():
		case <-ctx.Done():
			return ready, nil // the hub drops it; the framework sends it again
		}
		if err := s.settle(ctx, sub, f.N, ack); err != nil {
			return ready, fmt.Errorf("%s: %w", where, err)
		}
	}
	if err := sc.Err(); err != nil {
		return ready, fmt.Errorf("%s: %w", where, err)
	}
	return ready, fmt.Errorf("%s: %w", where, io.ErrUnexpectedEOF)
}

// settle posts the ack or nack of delivery n of stream sub.
func (s *subscription) settle(ctx context.Context, sub string, n uint64, ack bool) error {
	body := []byte(`{"n":` + strconv.FormatUint(n, 10) + `,"ack":` + strconv.FormatBool(ack) + `}`)
	resp, err := s.c.do(ctx, http.MethodPost, "/v1/ack", url.Values{"sub": {sub}}, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return statusError(fmt.Sprintf("settling delivery %d", n), resp)
}
