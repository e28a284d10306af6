//go:build !device

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// postgresURL is the test server's URL (IOTOD_POSTGRES_URL, from
// scripts/services.sh env); unset, the test fails, so that a full run
// never silently leaves the PostgreSQL bench out.
func postgresURL(t *testing.T) string {
	t.Helper()
	url := strings.TrimSpace(os.Getenv("IOTOD_POSTGRES_URL"))
	if url == "" {
		t.Fatal("IOTOD_POSTGRES_URL is not set: this test needs PostgreSQL; start PostgreSQL with `make services-start` and `export $(bash scripts/services.sh env)`, or run `make test` (docs/testing.md), or use go test -short to skip it")
	}
	return url
}

// benchSchemas lists the schemas the bench leaves (it drops its own).
func benchSchemas(t *testing.T, url string) []string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'iotod\\_bench\\_%' ORDER BY 1")
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

// TestRunPostgresSmoke runs the PostgreSQL benchmark at a tiny size on the
// test server (IOTOD_POSTGRES_URL), in text and in JSON: it checks both
// figures, the ratio and the per-run figures are printed, and that the
// schemas it made are gone, not any value.
func TestRunPostgresSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	url := postgresURL(t)
	before := benchSchemas(t, url)

	var out bytes.Buffer
	err := RunPostgres(context.Background(), PostgresOptions{URL: url, Dir: t.TempDir(), Changes: 300, Appliers: 2, Batch: 70, Runs: 2, Out: &out})
	require.NoError(t, err)
	for _, want := range []string{"P6 cloud apply into PostgreSQL", "iotod db.Apply, postgres store", "changes/s", "raw pgx INSERT ... ON CONFLICT, 70 rows/stmt", "ratio", "bar: >= 0.9x", "runs: ", "serialization failure"} {
		require.Contains(t, out.String(), want)
	}
	require.NotContains(t, out.String(), "postgres://", "the report never shows the URL")
	t.Log(out.String())

	out.Reset()
	err = RunPostgres(context.Background(), PostgresOptions{URL: url, Dir: t.TempDir(), Changes: 100, Appliers: 2, Runs: 1, JSON: true, Out: &out})
	require.NoError(t, err)
	var rep PostgresReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	require.Equal(t, 100, rep.Changes)
	require.Equal(t, 500, rep.Batch)
	require.Len(t, rep.Iotod.Runs, 1)
	require.Len(t, rep.Raw.Runs, 1)
	require.Len(t, rep.Ratio.Runs, 1)
	require.Len(t, rep.Retried, 1)
	require.Len(t, rep.Updates, 1)
	require.Positive(t, rep.Updates[0])
	require.Positive(t, rep.Iotod.Median)
	require.Positive(t, rep.Raw.Median)

	require.Equal(t, before, benchSchemas(t, url), "the bench drops the schemas it creates")
}

// TestRunPostgresRefusesBadOptions needs no server.
func TestRunPostgresRefusesBadOptions(t *testing.T) {
	err := RunPostgres(context.Background(), PostgresOptions{Out: &bytes.Buffer{}})
	require.ErrorContains(t, err, "no server URL")
	err = RunPostgres(context.Background(), PostgresOptions{URL: "postgres://u:secret@127.0.0.1:1/db", Batch: maxRawBatch + 1, Out: &bytes.Buffer{}})
	require.ErrorContains(t, err, "--batch")
	err = RunPostgres(context.Background(), PostgresOptions{URL: "postgres://u:secret@[bad", Out: &bytes.Buffer{}})
	require.ErrorContains(t, err, "not a valid postgres URL")
	require.NotContains(t, err.Error(), "secret")
}
