// Package api serves the device database over a local HTTP/JSON API, on
// loopback TCP and/or a unix socket, and holds a Client for it.
// docs/http-api.md describes the endpoints.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/iotod/iotod/runner"
)

// DefaultMaxBodyBytes caps request bodies unless Options say otherwise.
const DefaultMaxBodyBytes = 1 << 20

// Options configure a Server.
type Options struct {
	// DB serves the requests. Required.
	DB Database
	// Name is DB's name in the config (its storage entry): ?storage=Name
	// addresses it, as no ?storage does.
	Name string
	// Site is reported by /v1/health.
	Site string
	// Logger; nil discards.
	Logger *slog.Logger
	// MaxBodyBytes caps a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Pipelines serve /v1/sync, /v1/status, /v1/deadletters and /metrics;
	// nil when none are configured.
	Pipelines Pipelines
	// Stores are the other stores of the process by name (for example the
	// cloud side's in the all-in-one setup), addressed with ?storage=NAME
	// on the model endpoints.
	Stores map[string]Database
	// UI serves the status page at / (ui.go; the config's api.ui).
	UI bool
	// Reload serves POST /v1/reload (nil: 404).
	Reload Reloader

	_ struct{}
}

// Server is the HTTP/JSON API server.
type Server struct {
	db      Database
	name    string
	stores  map[string]Database
	pipes   Pipelines
	site    string
	log     *slog.Logger
	maxBody int64
	ui      bool
	// reloader re-reads and applies the configuration (nil: none).
	reloader Reloader
	mux      *http.ServeMux
	http     *http.Server

	mu        sync.Mutex
	listeners []net.Listener
	errc      chan error
}

// NewServer returns a server over opts.DB; Start makes it listen.
func NewServer(opts Options) (*Server, error) {
	if opts.DB == nil {
		return nil, errors.New("api: Options.DB is required")
	}
	s := &Server{db: opts.DB, name: opts.Name, stores: opts.Stores, pipes: opts.Pipelines, site: opts.Site, log: opts.Logger, maxBody: opts.MaxBodyBytes, ui: opts.UI, reloader: opts.Reload}
	if r, ok := s.pipes.(*runner.Runner); ok && r == nil {
		s.pipes = nil // a nil *Runner in the interface means none
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	s.mux = http.NewServeMux()
	s.routes()
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnContext:       markUnixConn,
	}
	return s, nil
}

// Handler returns the API's handler. Requests not from a unix socket must
// name a loopback host (127.0.0.1, [::1] or localhost), which defeats DNS
// rebinding from web pages; a browser's POST from another origin is
// refused (sameOrigin).
func (s *Server) Handler() http.Handler {
	next := s.sameOrigin(s.mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fromUnixConn(r.Context()) && !loopbackHost(r.Host) {
			s.writeError(w, r, errStatus(http.StatusForbidden, CodeForbidden,
				"host %q is not a loopback name: use 127.0.0.1, [::1] or localhost", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Listeners are the addresses Listen bound, for a Server to serve on.
type Listeners struct{ lns []net.Listener }

// Listen binds the loopback TCP address listen and the unix socket path
// socket (each optional: "" skips it), or returns the error of the first
// that fails. iotod run binds them before it opens anything else, so that
// a port in use fails at once; Server.Serve then serves on them.
func Listen(ctx context.Context, listen, socket string) (*Listeners, error) {
	if listen == "" && socket == "" {
		return nil, errors.New("api: nothing to listen on: both the TCP address and the socket are empty")
	}
	l := &Listeners{}
	if listen != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", listen)
		if err != nil {
			return nil, fmt.Errorf("api: listen on %s: %w", listen, err)
		}
		l.lns = append(l.lns, ln)
	}
	if socket != "" {
		ln, err := listenUnix(ctx, socket)
		if err != nil {
			_ = l.Close()
			return nil, err
		}
		l.lns = append(l.lns, ln)
	}
	return l, nil
}

// Addrs returns the bound addresses.
func (l *Listeners) Addrs() []net.Addr {
	out := make([]net.Addr, len(l.lns))
	for i, ln := range l.lns {
		out[i] = ln.Addr()
	}
	return out
}

// Close closes the listeners (a unix socket's file is removed); those a
// server serves on are closed already by its Shutdown.
func (l *Listeners) Close() error {
	var errs []error
	for _, ln := range l.lns {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Start listens on the loopback TCP address listen and on the unix socket
// path socket (each optional: "" skips it) and serves in the background:
// Listen, then Serve. It returns once both listen, or with the error of
// the first that fails. A server starts once.
func (s *Server) Start(ctx context.Context, listen, socket string) error {
	if len(s.Addrs()) > 0 {
		return errors.New("api: the server is started already")
	}
	l, err := Listen(ctx, listen, socket)
	if err != nil {
		return err
	}
	if err := s.Serve(l); err != nil {
		_ = l.Close()
		return err
	}
	return nil
}

// Serve serves on l in the background, until Shutdown. A server serves
// once.
func (s *Server) Serve(l *Listeners) error {
	s.mu.Lock()
	if len(s.listeners) > 0 {
		s.mu.Unlock()
		return errors.New("api: the server is started already")
	}
	s.listeners = append(s.listeners, l.lns...)
	s.errc = make(chan error, len(s.listeners))
	s.mu.Unlock()
	for _, ln := range l.lns {
		go func() {
			if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				s.errc <- fmt.Errorf("api: serve on %s: %w", ln.Addr(), err)
			}
		}()
	}
	return nil
}

// Addrs returns the addresses the server listens on, after Start.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, ln := range s.listeners {
		out[i] = ln.Addr()
	}
	return out
}

// Err returns a channel that receives an error if serving stops by itself,
// after Start. It is nil before Start.
func (s *Server) Err() <-chan error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errc
}

// Shutdown stops accepting requests and waits for those in flight, until
// ctx ends; then it closes what is left. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.http.Close())
	}
	if err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}
