package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
)

// defaultSchema is the repo's default schema, which the docs use too.
const defaultSchema = "../schema.json5"

// openDB opens a real db over a badger store in a temp folder.
func openDB(t *testing.T) *db.DB {
	testenv.NeedBadger(t)
	t.Helper()
	ctx := context.Background()
	sch, err := schema.Load(defaultSchema)
	require.NoError(t, err)
	cfg := badger.NewDefaultConfig()
	cfg.Path = t.TempDir()
	cfg.Durability = badger.DurabilityAsync
	st, err := badger.Open(ctx, cfg, nil)
	require.NoError(t, err)
	d, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "test-site"})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, d.Close(ctx))
		require.NoError(t, st.Close(ctx))
	})
	return d
}

// startHTTP serves a real db through httptest and returns its URL and a
// client of it.
func startHTTP(t *testing.T) (string, *api.Client) {
	t.Helper()
	srv, err := api.NewServer(api.Options{DB: openDB(t), Site: "test-site"})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c, err := api.NewClient(hs.URL, "")
	require.NoError(t, err)
	return hs.URL, c
}

// post sends a raw JSON request and returns the status and body.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
