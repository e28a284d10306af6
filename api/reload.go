package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/iotod/iotod/runner"
)

// Reloader re-reads the process's configuration and applies it (iotod
// run's, docs/operations.md "Reloading the configuration"). Its errors
// wrap ErrInvalidConfig when the files do not load (nothing changed) and
// runner.ErrRestartNeeded when they change what only a restart can.
type Reloader func(ctx context.Context) (runner.Reloaded, error)

// ErrInvalidConfig marks a reload refused because the configuration does
// not load or check; the error names the file and line.
var ErrInvalidConfig = errors.New("invalid configuration")

// Reload is the body of a successful POST /v1/reload.
type Reload struct {
	Reloaded runner.Reloaded `json:"reloaded"`
}

// Error codes of POST /v1/reload.
const (
	CodeInvalidConfig = "invalid_config"
	CodeRestartNeeded = "restart_needed"
)

// reloadTimeout bounds a reload request: the drain of the pipelines it
// stops is bounded by iotod run's --drain-timeout below it.
const reloadTimeout = 5 * time.Minute

// reload re-reads the configuration and applies it.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	var none struct{}
	if err := s.decodeBody(w, r, &none, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.reloader == nil {
		s.writeError(w, r, errStatus(http.StatusNotFound, CodeNotFound, "reload: this server has no configuration to reload"))
		return
	}
	extendDeadlines(w, reloadTimeout)
	ctx, cancel := context.WithTimeout(r.Context(), reloadTimeout)
	defer cancel()
	got, err := s.reloader(ctx)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, Reload{Reloaded: got})
	case errors.Is(err, ErrInvalidConfig):
		s.writeError(w, r, errStatus(http.StatusBadRequest, CodeInvalidConfig, "%s", oneLine(err)))
	case errors.Is(err, runner.ErrRestartNeeded):
		s.writeError(w, r, errStatus(http.StatusConflict, CodeRestartNeeded, "%s", oneLine(err)))
	default:
		s.writeError(w, r, fmt.Errorf("%w", oneLineError{err}))
	}
}
