package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iotod/iotod/pipeline"
)

// envURL names the environment variable holding the test server's URL,
// e.g. postgres://postgres@127.0.0.1:15432/iotod_test?sslmode=disable.
const envURL = "IOTOD_POSTGRES_URL"

// pgURL returns the test server's URL from IOTOD_POSTGRES_URL. Unset, it
// skips the test under go test -short and fails it otherwise, so that a
// full run (make test) never silently leaves the PostgreSQL tests out.
func pgURL(t testing.TB) string {
	t.Helper()
	u := strings.TrimSpace(os.Getenv(envURL))
	if u != "" {
		if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			t.Fatalf("%s: want a postgres:// URL such as postgres://postgres@127.0.0.1:15432/iotod_test?sslmode=disable", envURL)
		}
		return u
	}
	const how = "start PostgreSQL with `make services-start` and `export $(bash scripts/services.sh env)`, or run `make test` (docs/testing.md)"
	if testing.Short() {
		t.Skip(envURL + " is not set: skipping this PostgreSQL test under -short; " + how)
	}
	t.Fatal(envURL + " is not set: this test needs PostgreSQL; " + how + ", or use go test -short to skip it")
	return ""
}

// schemaName is a fresh schema name, dropped when t ends.
func schemaName(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "iotod_test_" + hex.EncodeToString(b)
	u := pgURL(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// testConfig is a config for the test server on a fresh schema (dropped
// when t ends), with quick sweeps.
func testConfig(t testing.TB) Config {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.URL = pgURL(t)
	cfg.Schema = schemaName(t)
	cfg.ConnectTimeout = 5 * time.Second
	return cfg
}

// rawConn is a plain connection to the test server, closed when t ends.
func rawConn(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pgURL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// openStore opens a store on cfg, closed when t ends.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("open schema %s: %v", cfg.Schema, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// logBuffer collects every log line, at every level.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// suiteOpener opens a store per suite directory: the first open of a
// directory makes a fresh schema, a reopen is a new store on that schema.
func suiteOpener(edit func(*Config)) func(t *testing.T, dir string) pipeline.Store {
	var mu sync.Mutex
	schemas := map[string]Config{}
	return func(t *testing.T, dir string) pipeline.Store {
		mu.Lock()
		cfg, ok := schemas[dir]
		if !ok {
			cfg = testConfig(t)
			if edit != nil {
				edit(&cfg)
			}
			schemas[dir] = cfg
		}
		mu.Unlock()
		s, err := Open(t.Context(), cfg, testLogger(t))
		if err != nil {
			t.Fatalf("open schema %s: %v", cfg.Schema, err)
		}
		return s
	}
}

// rec is a record of model Thing at key pk/sk.
func rec(pk, sk string, idx ...pipeline.IndexEntry) *pipeline.Record {
	return &pipeline.Record{
		Key: pipeline.Key{PK: pk, SK: sk}, Model: "Thing", Item: fmt.Appendf(nil, `{"pk":%q,"sk":%q}`, pk, sk),
		Indexes: idx, Version: pipeline.Version{Wall: time.Now().UnixMilli(), Counter: 1, Origin: "cloud"},
	}
}
