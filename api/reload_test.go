package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/runner"
)

// reloadServer serves a real db with reload as its Reloader (nil: none).
func reloadServer(t *testing.T, reload api.Reloader) string {
	t.Helper()
	srv, err := api.NewServer(api.Options{DB: openDB(t), Site: "test-site", Reload: reload})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// POST /v1/reload answers what the reload did, or why it changed nothing,
// with a status and code a client can tell apart.
func TestReloadEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name     string
		result   runner.Reloaded
		err      error
		status   int
		contains string
	}{
		{"applied", runner.Reloaded{Restarted: []string{"up"}, Unchanged: []string{"apply"}}, nil,
			http.StatusOK, `{"reloaded":{"added":null,"removed":null,"restarted":["up"],"unchanged":["apply"],"transports_replaced":null}}`},
		{"an invalid file", runner.Reloaded{}, fmt.Errorf("%w: reload refused, nothing changed: /etc/iotod/pipelines.yaml:12: unknown key \"stagez\"", api.ErrInvalidConfig),
			http.StatusBadRequest, `"code":"invalid_config"`},
		{"a store's path", runner.Reloaded{}, fmt.Errorf("reload refused, nothing changed: storage/local changes: %w", runner.ErrRestartNeeded),
			http.StatusConflict, `"code":"restart_needed"`},
		{"a transport that fails after the stop", runner.Reloaded{}, errors.New("reload failed after the old pipelines stopped; up are not running"),
			http.StatusInternalServerError, `"code":"internal"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := reloadServer(t, func(context.Context) (runner.Reloaded, error) { return tc.result, tc.err })
			code, body := post(t, base+"/v1/reload", `{}`)
			assert.Equal(t, tc.status, code, body)
			assert.Contains(t, body, tc.contains)
			if tc.err != nil {
				assert.Contains(t, body, strings.ReplaceAll(tc.err.Error(), `"`, `\"`), "the error as the reload gave it")
			}
		})
	}

	// The client says the same.
	base := reloadServer(t, func(context.Context) (runner.Reloaded, error) {
		return runner.Reloaded{}, fmt.Errorf("the schema changes: %w", runner.ErrRestartNeeded)
	})
	c, err := api.NewClient(base, "")
	require.NoError(t, err)
	_, err = c.Reload(context.Background())
	require.ErrorContains(t, err, "the schema changes")
	var ae *api.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, api.CodeRestartNeeded, ae.Code)
	require.Equal(t, http.StatusConflict, ae.Status)
}

// Without a reloader (a server not run by iotod run) it is 404; from
// another origin, or not as JSON, the reload is refused before it runs.
func TestReloadEndpointRefusals(t *testing.T) {
	code, body := post(t, reloadServer(t, nil)+"/v1/reload", `{}`)
	assert.Equal(t, http.StatusNotFound, code, body)

	var calls atomic.Int32
	base := reloadServer(t, func(context.Context) (runner.Reloaded, error) {
		calls.Add(1)
		return runner.Reloaded{}, nil
	})
	for _, tc := range []struct {
		name, method, ctype, body string
		headers                   []string
		status                    int
	}{
		{"a form from another site", http.MethodPost, "application/x-www-form-urlencoded", "x=1",
			[]string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"a fetch from another site", http.MethodPost, "application/json", "{}",
			[]string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{"a plain-text body", http.MethodPost, "text/plain", "{}", nil, http.StatusUnsupportedMediaType},
		{"a body that is not {}", http.MethodPost, "application/json", `{"force":true}`, nil, http.StatusBadRequest},
		{"a GET", http.MethodGet, "", "", nil, http.StatusMethodNotAllowed},
	} {
		req, err := http.NewRequest(tc.method, base+"/v1/reload", strings.NewReader(tc.body))
		require.NoError(t, err)
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		for i := 0; i+1 < len(tc.headers); i += 2 {
			req.Header.Set(tc.headers[i], tc.headers[i+1])
		}
		code, body := do(t, req)
		assert.Equal(t, tc.status, code, "%s: %s", tc.name, body)
	}
	assert.Zero(t, calls.Load(), "no refused request reached the reload")
	code, body = post(t, base+"/v1/reload", ``)
	assert.Equal(t, http.StatusOK, code, "an empty body is {}: %s", body)
	assert.Equal(t, int32(1), calls.Load())
}
