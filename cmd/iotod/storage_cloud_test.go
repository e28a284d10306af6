//go:build !device

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/plugins/storage/postgres"
)

// postgresConfig is a cloud worker on PostgreSQL (the URL is not dialled
// by --print).
func postgresConfig(t *testing.T, url, schema string) string {
	t.Helper()
	dir := t.TempDir()
	schemaFile, err := filepath.Abs("../../schema.json5")
	require.NoError(t, err)
	cfg := "site: cloud\nschema: " + schemaFile + "\nstorage:\n  cloud: {type: postgres, url: \"" + url + "\", schema: " + schema + ", side: cloud}\napi: {listen: 127.0.0.1:0}\n"
	p := filepath.Join(dir, "cloud.yaml")
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	return p
}

// TestStorageMigratePrint prints the store's SQL for its schema without
// connecting, and refuses a config without a postgres storage.
func TestStorageMigratePrint(t *testing.T) {
	cfg := postgresConfig(t, "postgres://u:secret@127.0.0.1:1/db", "fleet")
	out, err := execute(t, "storage", "migrate", "--print", "-c", cfg)
	require.NoError(t, err)
	assert.Equal(t, postgres.MigrationSQL("fleet"), out)
	assert.Contains(t, out, `CREATE SCHEMA IF NOT EXISTS "fleet"`)
	assert.NotContains(t, out, "secret")

	_, err = execute(t, "storage", "migrate", "--print", "-c", cfg, "--storage", "other")
	require.ErrorContains(t, err, `no storage "other" of type postgres`)
	testenv.NeedBadger(t) // the config without postgres names badger storages
	dev := writeConfig(t, pipelinesConfig)
	_, err = execute(t, "storage", "migrate", "--print", "-c", dev)
	require.ErrorContains(t, err, "no storage of type postgres")
}

// TestStorageMigrateCreatesTheTables runs migrate against the test
// server: the tables exist after it (a store with create_tables false
// opens), and a second run changes nothing.
func TestStorageMigrateCreatesTheTables(t *testing.T) {
	url := os.Getenv("IOTOD_POSTGRES_URL")
	if url == "" {
		if testing.Short() {
			t.Skip("needs PostgreSQL (IOTOD_POSTGRES_URL)")
		}
		t.Fatal("IOTOD_POSTGRES_URL is not set: this test needs PostgreSQL; run `make services-start` and `export $(bash scripts/services.sh env)`, or `make test` (docs/testing.md), or use go test -short to skip it")
	}
	schema := "migrate_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))
	cfg := postgresConfig(t, url, schema)
	for range 2 {
		out, err := execute(t, "storage", "migrate", "-c", cfg)
		require.NoError(t, err)
		assert.Contains(t, out, "schema "+schema+" is ready")
	}
	c := postgres.NewDefaultConfig()
	c.URL, c.Schema, c.CreateTables, c.Listen = url, schema, false, false
	st, err := postgres.Open(t.Context(), c, nil)
	require.NoError(t, err, "a store without create_tables opens on the migrated schema")
	require.NoError(t, st.Close(t.Context()))
	dropSchema(t, url, schema)
}

// dropSchema removes a test's schema from the test server.
func dropSchema(t *testing.T, url, schema string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(t.Context(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	require.NoError(t, err)
}
