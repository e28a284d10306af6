package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const reloadConfig = `site: cli-test
schema: schema.json5
log: {level: info}
storage:
  local: {type: badger, path: dev}
  cloud: {type: badger, path: cloud, side: cloud, site: cloud}
transports:
  bus: {type: inproc}
pipelines:
  up: {from: storage/local, to: transport/bus, ack_timeout: 10s}
  ingest: {from: transport/bus, to: storage/cloud}
api:
  listen: 127.0.0.1:0
`

// TestReloadCommand: iotod reload applies what changed, says what it
// did, and refuses what the runner does not see (the API, the log format,
// the schema) and a broken file, changing nothing; the log level applies
// at once.
func TestReloadCommand(t *testing.T) {
	cfg := writeConfig(t, reloadConfig)
	d := runInProcess(t, cfg, "")
	addr := d.serving(t)
	reload := func() (string, error) { return runCmd(t, "reload", "--addr", addr) }
	write := func(body string) { require.NoError(t, os.WriteFile(cfg, []byte(body), 0o600)) }
	// Reload until the pipelines' start (in the background) is done.
	var out string
	var err error
	require.Eventually(t, func() bool {
		out, err = reload()
		return err == nil || !strings.Contains(err.Error(), "not started yet")
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, "reloaded: nothing changed (2 pipelines run on)\n", out)

	write(strings.Replace(reloadConfig, "ack_timeout: 10s", "ack_timeout: 5s", 1))
	out, err = reload()
	require.NoError(t, err)
	assert.Equal(t, "reloaded:\n  restarted: up\n  unchanged: ingest\n", out)

	for _, tc := range []struct{ name, body, want string }{
		{"the API's address", strings.Replace(reloadConfig, "127.0.0.1:0", "127.0.0.1:1", 1), "the API's addresses or status page change"},
		{"the log format", strings.Replace(reloadConfig, "level: info", "level: info, format: json", 1), "the log format changes"},
		{"a store's path", strings.Replace(reloadConfig, "path: dev", "path: dev2", 1), "storage/local changes"},
		{"a broken file", strings.Replace(reloadConfig, "  ingest:", "  ingest: [", 1), "pipelines.yaml:10"},
		{"an unknown key", strings.Replace(reloadConfig, "ack_timeout: 10s", "ack_timeout: 10s, acktimeout: 1s", 1), "pipelines.yaml:10"},
	} {
		write(tc.body)
		_, err := reload()
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
		assert.Contains(t, err.Error(), "nothing changed", tc.name)
	}
	// The schema's content.
	write(strings.Replace(reloadConfig, "ack_timeout: 10s", "ack_timeout: 5s", 1))
	schema := filepath.Join(filepath.Dir(cfg), "schema.json5")
	orig, err := os.ReadFile(schema)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(schema, append(orig, []byte("\n// changed\n")...), 0o600))
	_, err = reload()
	require.ErrorContains(t, err, "the schema changes")
	require.ErrorContains(t, err, "restart is needed")
	require.NoError(t, os.WriteFile(schema, orig, 0o600))
	out, err = reload()
	require.NoError(t, err)
	assert.Contains(t, out, "nothing changed", "the refusals changed nothing: up still has 5s")

	// The log level applies at once: at error, the reloads' info lines
	// are not logged (that of the reload that sets it neither); back at
	// info, they are.
	before := strings.Count(d.logs.String(), "configuration reloaded")
	withTimeout := strings.Replace(reloadConfig, "ack_timeout: 10s", "ack_timeout: 5s", 1)
	write(strings.Replace(withTimeout, "level: info", "level: error", 1))
	for range 2 {
		_, err = reload()
		require.NoError(t, err)
	}
	assert.Equal(t, before, strings.Count(d.logs.String(), "configuration reloaded"), "nothing logged at info")
	write(withTimeout)
	_, err = reload()
	require.NoError(t, err)
	assert.Equal(t, before+1, strings.Count(d.logs.String(), "configuration reloaded"), "info again")
	d.stop(t)
}
