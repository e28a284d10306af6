package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInitWritesAValidDevice runs init with its defaults and validates
// what it wrote: the store is badger on a 64-bit build and sqlite on a
// 32-bit one (make test runs this package as GOARCH=386 too).
func TestInitWritesAValidDevice(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gateway")
	out, err := execute(t, "init", "--dir", dir, "--site", "pump-7", "--broker", "broker.example.com:8883")
	require.NoError(t, err)
	assert.Contains(t, out, "wrote "+filepath.Join(dir, "pipelines.yaml"))
	want := map[int]string{64: "badger", 32: "sqlite"}[strconv.IntSize]
	assert.Contains(t, out, "store "+want)

	t.Setenv("IOTOD_DEVICE_PASSWORD", "secret")
	out, err = execute(t, "validate", "-c", filepath.Join(dir, "pipelines.yaml"))
	require.NoError(t, err)
	assert.Contains(t, out, "storage    local: "+want+", device side, site pump-7")
	assert.Contains(t, out, "transport  cloud: mqtt")
	assert.Contains(t, out, "pipeline   up: storage/local -> policy -> batch -> transport/cloud")
}

// TestInitSQLite chooses the SQLite store on any build.
func TestInitSQLite(t *testing.T) {
	dir := t.TempDir()
	_, err := execute(t, "init", "--dir", dir, "--store", "sqlite")
	require.NoError(t, err)
	t.Setenv("IOTOD_DEVICE_PASSWORD", "secret")
	out, err := execute(t, "validate", "-c", filepath.Join(dir, "pipelines.yaml"))
	require.NoError(t, err)
	assert.Contains(t, out, "storage    local: sqlite, device side, site device-1")
}

// TestInitKeepsExistingFilesAndRefusesBadFlags: nothing is overwritten
// without --force, and bad flags write nothing.
func TestInitKeepsExistingFilesAndRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	mine := []byte("site: mine\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pipelines.yaml"), mine, 0o644))
	_, err := execute(t, "init", "--dir", dir)
	require.ErrorContains(t, err, "pipelines.yaml exists: nothing was written")
	got, _ := os.ReadFile(filepath.Join(dir, "pipelines.yaml"))
	assert.Equal(t, mine, got)
	assert.NoFileExists(t, filepath.Join(dir, "schema.json5"), "init wrote part of its files")

	for _, args := range [][]string{{"--store", "rocks"}, {"--site", "a b"}, {"--site", "a/b"}, {"--broker", ""}} {
		empty := t.TempDir()
		_, err := execute(t, append([]string{"init", "--dir", empty}, args...)...)
		require.Error(t, err, "%v", args)
		entries, _ := os.ReadDir(empty)
		assert.Empty(t, entries, "%v wrote files", args)
	}

	_, err = execute(t, "init", "--dir", dir, "--force")
	require.NoError(t, err)
	got, _ = os.ReadFile(filepath.Join(dir, "pipelines.yaml"))
	assert.NotEqual(t, mine, got, "--force replaced the file")
}

// TestInitSchemaIsTheDefault keeps the embedded starter schema equal to
// the repository's schema.json5.
func TestInitSchemaIsTheDefault(t *testing.T) {
	repo, err := os.ReadFile("../../schema.json5")
	require.NoError(t, err)
	require.True(t, bytes.Equal(repo, initSchema), "cmd/iotod/initfiles/schema.json5 differs from schema.json5: copy it")
}
