package httpbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/transport/inproc"
)

// Hub is the cloud side: an in-process bus, served over HTTP to the
// clients of its config. It is itself a pipeline.Transport: Publish and
// Subscribe go straight to the bus, so cloud pipelines in the hub's
// process need no HTTP. It is safe for concurrent use.
type Hub struct {
	cfg Config
	bus *inproc.Transport
	ln  net.Listener
	srv *http.Server
	// stop cancels the context of every request, ending the streams.
	stop   context.CancelFunc
	served chan struct{}

	mu      sync.Mutex
	closed  bool
	streams map[string]*stream
}

// NewHub starts a hub for c (a hub config from Parse): it listens on
// c.Listen at once.
func NewHub(c Config) (*Hub, error) {
	if !c.IsHub() {
		return nil, fmt.Errorf("%w: httpbus hub: no listen address", pipeline.ErrInvalid)
	}
	bus, err := inproc.New(inproc.NewDefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("httpbus hub: %w", err)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		_ = bus.Close(context.Background())
		return nil, fmt.Errorf("httpbus hub: listen: %w", err)
	}
	base, stop := context.WithCancel(context.Background())
	h := &Hub{cfg: c, bus: bus, ln: ln, stop: stop, served: make(chan struct{}), streams: map[string]*stream{}}
	h.srv = &http.Server{
		Handler:           h.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxMetadata + 16<<10,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	go func() {
		defer close(h.served)
		_ = h.srv.Serve(ln) // returns at Close
	}()
	return h, nil
}

// Addr is the address the hub listens on (its port, when Listen said 0).
func (h *Hub) Addr() string { return h.ln.Addr().String() }

// URL is the hub's base URL, for clients' url.
func (h *Hub) URL() string { return "http://" + h.Addr() }

// MaxPayload is the largest payload the hub takes.
func (h *Hub) MaxPayload() int { return h.cfg.MaxPayload }

// Publish publishes msg on the bus. It refuses what a client could not
// receive: a payload over MaxPayload, metadata over the header's bounds.
func (h *Hub) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	if msg != nil {
		if len(msg.Payload) > h.cfg.MaxPayload {
			return fmt.Errorf("httpbus: %d bytes: %w (%d)", len(msg.Payload), pipeline.ErrTooLargeForTransport, h.cfg.MaxPayload)
		}
		if _, err := encodeMetadata(msg.Metadata); err != nil {
			return fmt.Errorf("%w: httpbus: %w", pipeline.ErrInvalid, err)
		}
	}
	return h.bus.Publish(ctx, ch, site, msg)
}

// Subscribe subscribes to the bus.
func (h *Hub) Subscribe(ctx context.Context, ch pipeline.Channel, site string) (<-chan *message.Message, error) {
	return h.bus.Subscribe(ctx, ch, site)
}

// Close ends the streams, stops the HTTP server, then closes the bus
// (messages not acked are dropped: the framework sends them again). A
// second Close returns nil.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()

	h.stop()
	var errs []error
	if err := h.srv.Shutdown(ctx); err != nil {
		// Connections still busy when ctx ended are cut.
		errs = append(errs, fmt.Errorf("httpbus hub: shutdown: %w", err), h.srv.Close())
	}
	<-h.served
	errs = append(errs, h.bus.Close(ctx))
	return errors.Join(errs...)
}

// stream is one subscription served over HTTP: who opened it, and the
// deliveries sent and not settled yet, by number.
type stream struct {
	token   string
	mu      sync.Mutex
	pending map[uint64]*message.Message
}

// take removes and returns delivery n, or nil if it is not pending.
func (s *stream) take(n uint64) *message.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.pending[n]
	delete(s.pending, n)
	return m
}

func (s *stream) put(n uint64, m *message.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[n] = m
}

// register adds s under id; it fails once the hub is closed.
func (h *Hub) register(id string, s *stream) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return pipeline.ErrClosed
	}
	h.streams[id] = s
	return nil
}

// unregister removes stream id and nacks what it had not settled.
func (h *Hub) unregister(id string) {
	h.mu.Lock()
	s := h.streams[id]
	delete(h.streams, id)
	h.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, m := range s.pending {
		m.Nack()
		delete(s.pending, n)
	}
}

func (h *Hub) stream(id string) *stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams[id]
}

var (
	_ pipeline.Transport      = (*Hub)(nil)
	_ pipeline.PayloadLimiter = (*Hub)(nil)
)
