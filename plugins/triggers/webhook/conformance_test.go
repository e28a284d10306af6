package webhook

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

// urlTarget is a webhook trigger posting to url, with short retry delays.
func urlTarget(url string) plugintest.TriggerTarget {
	cfg := NewFactory().NewDefaultConfig().(*Config)
	cfg.URL = url
	cfg.RetryDelay = 20 * time.Millisecond
	cfg.MaxRetryDelay = 100 * time.Millisecond
	return plugintest.TriggerTarget{Config: cfg}
}

// server starts a test server with handler, closed when t ends.
func server(t *testing.T, handler http.HandlerFunc) string {
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

// answering is a target answering code, after reading the body.
func answering(code int) func(t *testing.T) plugintest.TriggerTarget {
	return func(t *testing.T) plugintest.TriggerTarget {
		return urlTarget(server(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			http.Error(w, "refused by the test", code)
		}))
	}
}

func TestConformance(t *testing.T) {
	plugintest.TestTrigger(t, plugintest.TriggerHarness{
		Factory:    NewFactory(),
		Concurrent: true,
		Working: func(t *testing.T) plugintest.TriggerTarget {
			var mu sync.Mutex
			var got [][]pipeline.Change
			target := urlTarget(server(t, func(w http.ResponseWriter, r *http.Request) {
				var body struct {
					Pipeline string            `json:"pipeline"`
					Changes  []pipeline.Change `json:"changes"`
				}
				if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
					t.Errorf("the request body is not a batch of changes: %v", err)
				}
				mu.Lock()
				got = append(got, body.Changes)
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			target.Received = func() [][]pipeline.Change {
				mu.Lock()
				defer mu.Unlock()
				return append([][]pipeline.Change(nil), got...)
			}
			return target
		},
		Hanging: func(t *testing.T) plugintest.TriggerTarget {
			stop := make(chan struct{})
			url := server(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-stop:
				}
			})
			t.Cleanup(func() { close(stop) }) // before the server closes
			return urlTarget(url)
		},
		Refusals: []plugintest.TriggerRefusal{
			{Name: "500", New: answering(http.StatusInternalServerError)},
			{Name: "400", New: answering(http.StatusBadRequest), Permanent: true},
		},
	})
}
