package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/runner"
)

// Pipelines is what the server needs of the replication pipelines;
// *runner.Runner is one.
type Pipelines interface {
	// Sync flushes held batches and returns once every change committed
	// before the call is acknowledged, or ctx ends.
	Sync(ctx context.Context) error
	Status() runner.Status
	MetricsHandler() http.Handler
	DeadLetters() *runner.DeadLetters
	// Triggers reports the trigger queues; ReplayTriggers queues a
	// trigger's dead deliveries again.
	Triggers(ctx context.Context) ([]runner.TriggerStatus, error)
	ReplayTriggers(ctx context.Context, name string) (int, error)
}

var _ Pipelines = (*runner.Runner)(nil)

// Limits of the pipeline endpoints.
const (
	DefaultSyncTimeout     = 30 * time.Second
	MaxSyncTimeout         = 10 * time.Minute
	DefaultDeadLetterLimit = 100
	MaxDeadLetterLimit     = 1000
)

// Status is the body of GET /v1/status: the runner's status, and the
// local store's outbox when no pipelines run.
type Status struct {
	runner.Status
	// Outbox is the local store's outbox; only set when no pipelines are
	// configured (each sending pipeline reports its own otherwise).
	Outbox *pipeline.OutboxStats `json:"outbox,omitempty"`
}

// Synced is the body of a successful POST /v1/sync.
type Synced struct {
	Synced bool `json:"synced"`
}

// DeadLetters is the body of GET /v1/deadletters: the most recent dead
// letters, newest first, and how many there were since the start.
type DeadLetters struct {
	DeadLetters []runner.DeadLetter `json:"dead_letters"`
	Total       int64               `json:"total"`
}

// storeHolder is implemented by a Database that can show its store
// (*db.DB does), for the outbox stats of /v1/status.
type storeHolder interface {
	Store() pipeline.Store
}

func (s *Server) pipelineRoutes() {
	s.mux.HandleFunc("POST /v1/sync", s.sync)
	s.mux.HandleFunc("GET /v1/status", s.status)
	s.mux.HandleFunc("GET /v1/deadletters", s.deadLetters)
	s.mux.HandleFunc("GET /v1/devices", s.devices)
	s.mux.HandleFunc("GET /v1/triggers", s.triggers)
	s.mux.HandleFunc("POST /v1/triggers/replay", s.replayTriggers)
	s.mux.HandleFunc("GET /metrics", s.metrics)
	s.mux.HandleFunc("POST /v1/reload", s.reload)
}

func errNoPipelines() error {
	return errStatus(http.StatusServiceUnavailable, CodeUnavailable, "no pipelines are configured: there is nothing to sync")
}

// sync forces a sync and waits for it, up to ?timeout.
func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	q, err := singleQuery(r.URL.RawQuery, "timeout")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	timeout := DefaultSyncTimeout
	if v, ok := q["timeout"]; ok {
		timeout, err = time.ParseDuration(v)
		if err != nil || timeout <= 0 || timeout > MaxSyncTimeout {
			s.writeError(w, r, fmt.Errorf("%w: query parameter timeout: want a duration above 0 and at most %s, such as 30s, got %q",
				pipeline.ErrInvalid, MaxSyncTimeout, v))
			return
		}
	}
	// The body is empty or {}: it is read only to hold POSTs to the
	// JSON-only rule that keeps web pages out.
	var none struct{}
	if err := s.decodeBody(w, r, &none, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.pipes == nil {
		s.writeError(w, r, errNoPipelines())
		return
	}
	extendDeadlines(w, timeout)

	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	err = s.pipes.Sync(ctx)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, Synced{Synced: true})
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		s.writeError(w, r, errStatus(http.StatusGatewayTimeout, CodeTimeout,
			"sync: not every change was acknowledged within %s (%s)", timeout, oneLine(err)))
	default:
		s.writeError(w, r, fmt.Errorf("sync: %w", oneLineError{err}))
	}
}

// oneLineError shows an error on one line (errors.Join makes several),
// keeping its chain for errors.Is.
type oneLineError struct{ err error }

func (e oneLineError) Error() string { return oneLine(e.err) }
func (e oneLineError) Unwrap() error { return e.err }

// oneLine joins the lines of err's message with "; ".
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if _, err := singleQuery(r.URL.RawQuery); err != nil {
		s.writeError(w, r, err)
		return
	}
	var out Status
	if s.pipes != nil {
		out.Status = s.pipes.Status()
	} else {
		out.Site = s.site
		if h, ok := s.db.(storeHolder); ok && h.Store() != nil {
			st, err := h.Store().Outbox().Stats(r.Context())
			if err != nil {
				s.writeError(w, r, fmt.Errorf("status: outbox stats: %w", err))
				return
			}
			out.Outbox = &st
		}
	}
	if out.Pipelines == nil {
		out.Pipelines = []runner.PipelineStatus{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) {
	q, err := singleQuery(r.URL.RawQuery, "limit")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := DefaultDeadLetterLimit
	if v, ok := q["limit"]; ok {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 0 || limit > MaxDeadLetterLimit {
			s.writeError(w, r, fmt.Errorf("%w: query parameter limit: want an integer from 0 to %d, got %q",
				pipeline.ErrInvalid, MaxDeadLetterLimit, v))
			return
		}
	}
	out := DeadLetters{DeadLetters: []runner.DeadLetter{}}
	if s.pipes != nil {
		var letters []runner.DeadLetter
		letters, out.Total = s.pipes.DeadLetters().Recent()
		slices.Reverse(letters) // Recent is oldest first
		if len(letters) > 0 {
			out.DeadLetters = letters[:min(limit, len(letters))]
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.pipes == nil {
		s.writeError(w, r, errStatus(http.StatusNotFound, CodeNotFound, "no pipelines are configured: there are no metrics"))
		return
	}
	s.pipes.MetricsHandler().ServeHTTP(w, r)
}

// singleQuery parses a raw query string whose parameters must be among
// known, each given once.
func singleQuery(raw string, known ...string) (map[string]string, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed query string: %v", pipeline.ErrInvalid, err)
	}
	out := make(map[string]string, len(q))
	for name, vs := range q {
		switch {
		case !slices.Contains(known, name) && len(known) == 0:
			return nil, fmt.Errorf("%w: unknown query parameter %q (this endpoint takes none)", pipeline.ErrInvalid, name)
		case !slices.Contains(known, name):
			return nil, fmt.Errorf("%w: unknown query parameter %q (known: %s)", pipeline.ErrInvalid, name, strings.Join(known, ", "))
		case len(vs) > 1:
			return nil, fmt.Errorf("%w: query parameter %s is given %d times", pipeline.ErrInvalid, name, len(vs))
		}
		out[name] = vs[0]
	}
	return out, nil
}
