package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
)

const site = "pump-7"

// request is what a test server received.
type request struct {
	Method string
	Header http.Header
	Body   []byte
	At     time.Time
}

// recorder is a test server's handler: it records each request and
// answers with the next of its replies (the last one repeats).
type recorder struct {
	mu      sync.Mutex
	got     []request
	replies []func(http.ResponseWriter, *http.Request)
	arrived chan struct{} // one value per request, if not nil
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.got = append(rec.got, request{Method: r.Method, Header: r.Header.Clone(), Body: body, At: time.Now()})
	reply := rec.replies[min(len(rec.got), len(rec.replies))-1]
	rec.mu.Unlock()
	if rec.arrived != nil {
		rec.arrived <- struct{}{}
	}
	reply(w, r)
}

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.got...)
}

// status replies with code and text.
func status(code int, text string, header ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text)
	}
}

// serve starts a plain HTTP server answering with replies in turn.
func serve(t *testing.T, replies ...func(http.ResponseWriter, *http.Request)) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{replies: replies}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return srv, rec
}

// newTrigger makes a webhook trigger from a YAML config laid over the
// defaults, with retries waiting their longest (no randomness).
func newTrigger(t *testing.T, set pipeline.Settings, text string) *Trigger {
	t.Helper()
	tr, err := createFrom(t, set, text)
	require.NoError(t, err)
	return tr
}

func createFrom(t *testing.T, set pipeline.Settings, text string) (*Trigger, error) {
	t.Helper()
	f := NewFactory()
	cfg := f.NewDefaultConfig().(*Config)
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(cfg))
	if set.Site == "" {
		set.Site = site
	}
	tr, err := f.Create(t.Context(), set, cfg)
	if err != nil {
		return nil, err
	}
	tr.(*Trigger).jitter = func(d time.Duration) time.Duration { return d }
	return tr.(*Trigger), nil
}

// changes is a batch of three.
func changes() []pipeline.Change {
	return []pipeline.Change{
		{Seq: 1, Model: "Reading", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "r#1", SK: "t#1"}, Item: json.RawMessage(`{"value":1}`),
			Version: pipeline.Version{Wall: 100, Counter: 1, Origin: site}, Origin: site, Time: 100},
		{Seq: 2, Model: "User", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "u#1", SK: "u#1"},
			Version: pipeline.Version{Wall: 101, Origin: "cloud"}, Origin: "cloud", Time: 101},
		{Seq: 3, Model: "Reading", Op: pipeline.OpUpdate, Key: pipeline.Key{PK: "r#1", SK: "t#1"}, Item: json.RawMessage(`{"value":2}`),
			Version: pipeline.Version{Wall: 102, Origin: "cloud"}, Origin: "cloud", Time: 102},
	}
}
