package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// Error codes of error responses, beside the HTTP status.
const (
	CodeInvalid          = "invalid"
	CodeNotFound         = "not_found"
	CodeExists           = "exists"
	CodeConditionFailed  = "condition_failed"
	CodeTooLarge         = "too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeForbidden        = "forbidden"
	CodeUnavailable      = "unavailable"
	CodeTimeout          = "timeout"
	CodeInternal         = "internal"
)

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// statusError is an error that chose its own status and code.
type statusError struct {
	status int
	code   string
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func errStatus(status int, code, format string, args ...any) error {
	return &statusError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// classify maps err to an HTTP status and error code.
func classify(err error) (int, string) {
	var se *statusError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &se):
		return se.status, se.code
	case errors.As(err, &tooBig), errors.Is(err, pipeline.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	case errors.Is(err, pipeline.ErrInvalid):
		return http.StatusBadRequest, CodeInvalid
	case errors.Is(err, pipeline.ErrNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, pipeline.ErrExists):
		return http.StatusConflict, CodeExists
	case errors.Is(err, pipeline.ErrConditionFailed):
		return http.StatusConflict, CodeConditionFailed
	case errors.Is(err, pipeline.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, CodeUnavailable
	}
	return http.StatusInternalServerError, CodeInternal
}

// writeJSON writes v as the response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away: nothing more to do
}

// writeError writes err as a JSON error response, logging server faults.
// The caller's own timeout running out (a sync's) is not one, nor is a
// caller that gave up (unavailable): the runner counts syncs by result.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	switch {
	case code == CodeTimeout:
		s.log.Debug("api request timed out", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= http.StatusInternalServerError && code != CodeUnavailable:
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, errorBody{Error: err.Error(), Code: code})
}

// decodeBody decodes the JSON request body into v: one JSON value, at most
// s.maxBody bytes, numbers kept as json.Number, unknown struct fields
// rejected. An empty body leaves v unchanged when emptyOK.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return errStatus(http.StatusUnsupportedMediaType, CodeUnsupportedMedia,
			"the request body must be JSON with Content-Type: application/json, got %q", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return fmt.Errorf("the request body is over %d bytes: %w", s.maxBody, err)
	case err != nil:
		return fmt.Errorf("%w: read the request body: %v", pipeline.ErrInvalid, err)
	}
	what := "the request body"
	if _, ok := v.(*db.Item); ok {
		what = "the item" // the body of a model operation
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		switch {
		case errors.Is(err, io.EOF) && emptyOK:
			return nil
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%w: the request body is empty", pipeline.ErrInvalid)
		}
		return fmt.Errorf("%w: %s", pipeline.ErrInvalid, DescribeJSONError(what, body, err))
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s is not valid JSON: data after the JSON value at %s", pipeline.ErrInvalid, what, JSONPosition(body, end))
	}
	return nil
}

// extendDeadlines lets a request that waits up to d (a sync, a reload)
// outlast the server's read and write timeouts, with 10 s to answer (a
// recorder in tests does not support it).
func extendDeadlines(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(d + 10*time.Second)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}
