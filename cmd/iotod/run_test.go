package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/testenv"
)

// serveInProcess runs `iotod run` on the config file cfg in this process
// until the test ends, and returns the API's address and the log.
func serveInProcess(t *testing.T, cfg string) (string, *syncBuffer) {
	t.Helper()
	testenv.NeedBadger(t)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDaemon(ctx, cancel, []string{cfg}, time.Second, slog.New(slog.NewTextHandler(logs, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		if done != nil {
			assert.NoError(t, <-done, "iotod run:\n%s", logs)
		}
	})
	deadline := time.After(20 * time.Second)
	for {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			return m[1], logs
		}
		select {
		case err := <-done:
			done = nil
			t.Fatalf("iotod run returned %v:\n%s", err, logs)
		case <-deadline:
			t.Fatalf("iotod run did not serve:\n%s", logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestStoresByTheirConfigNames addresses each store, the one the API
// serves by default included, by its name in the config.
func TestStoresByTheirConfigNames(t *testing.T) {
	cfg := writeConfig(t, `site: cli-test
schema: schema.json5
storage:
  local: {type: badger, path: dev}
  cloud: {type: badger, path: cloud, side: cloud, site: cloud}
api:
  listen: 127.0.0.1:0
`)
	addr, _ := serveInProcess(t, cfg)
	for _, name := range []string{"local", "cloud"} {
		_, err := runCmd(t, "db", "create", "Account", `{"name": "`+name+`"}`, "--addr", addr, "--storage", name)
		require.NoError(t, err, "--storage %s", name)
	}
	for _, name := range []string{"local", "cloud"} {
		out, err := runCmd(t, "db", "find", "Account", "--addr", addr, "--storage", name, "--fields", "name")
		require.NoError(t, err)
		assert.JSONEq(t, `{"items": [{"name": "`+name+`"}], "count": 1}`, out, "--storage %s", name)
	}
	_, err := runCmd(t, "db", "find", "Account", "--addr", addr, "--storage", "nope")
	assert.ErrorContains(t, err, `storage "nope" is not served here (known: cloud, local)`)
}
