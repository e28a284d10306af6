package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
)

// inProcess is `iotod run` running in this process.
type inProcess struct {
	logs   *syncBuffer
	cancel func()
	done   chan error
}

// runInProcess runs `iotod run` on the config file cfg in this process, at
// the log level level ("": the config's), until stop or the test's end.
func runInProcess(t *testing.T, cfg, level string) *inProcess {
	t.Helper()
	testenv.NeedBadger(t)
	ctx, cancel := context.WithCancel(context.Background())
	d := &inProcess{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- runDaemon(ctx, cancel, []string{cfg}, time.Second, d.logs, level) }()
	t.Cleanup(func() {
		cancel()
		<-d.done
		d.done <- nil
	})
	return d
}

// jsonAddrRE finds the address in the "serving" line of a JSON log.
var jsonAddrRE = regexp.MustCompile(`"msg":"iotod serving".*"addr":"([^"]+)"`)

// serving waits for the "serving" line and returns the API's address.
func (d *inProcess) serving(t *testing.T) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if m := addrRE.FindStringSubmatch(d.logs.String()); m != nil {
			return m[1]
		}
		if m := jsonAddrRE.FindStringSubmatch(d.logs.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("iotod run returned %v:\n%s", err, d.logs)
		case <-deadline:
			t.Fatalf("iotod run did not serve:\n%s", d.logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop ends the run as a signal does and checks that it ended well.
func (d *inProcess) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	err := <-d.done
	d.done <- err
	require.NoError(t, err, "iotod run:\n%s", d.logs)
}

// serveInProcess runs `iotod run` on cfg until the test ends and returns
// the API's address and the log.
func serveInProcess(t *testing.T, cfg string) (string, *syncBuffer) {
	t.Helper()
	d := runInProcess(t, cfg, "")
	return d.serving(t), d.logs
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

// TestRunLogConfig: iotod run logs in the config's log format from its
// level, and --log-level overrides the level.
func TestRunLogConfig(t *testing.T) {
	const device = `site: cli-test
schema: schema.json5
log: {level: debug, format: json}
api:
  listen: %s
storage:
  local: {type: badger, path: data}
`
	t.Run("json from debug", func(t *testing.T) {
		// Pipelines and a trigger too, every key of every line once.
		d := runInProcess(t, writeConfig(t, fmt.Sprintf(device, "127.0.0.1:0")+`  cloud: {type: badger, path: cloud, side: cloud, site: cloud}
transports:
  bus: {type: inproc}
pipelines:
  up: {from: storage/local, to: transport/bus}
  ingest: {from: transport/bus, to: storage/cloud, triggers: [log]}
`), "")
		c, err := api.NewClient(d.serving(t), "")
		require.NoError(t, err)
		_, err = c.Create(context.Background(), "User", db.Item{"accountId": "a1", "email": "u@x.io"}, nil)
		require.NoError(t, err)
		require.NoError(t, c.Sync(context.Background(), 10*time.Second))
		require.Eventually(t, func() bool { return strings.Contains(d.logs.String(), `"msg":"changes applied"`) },
			10*time.Second, 10*time.Millisecond, "the trigger's line")
		d.stop(t)
		levels := map[string]int{}
		for line := range strings.Lines(d.logs.String()) {
			keys := map[string]int{}
			dec := json.NewDecoder(strings.NewReader(line))
			_, err := dec.Token()
			require.NoError(t, err, "a JSON object a line: %s", line)
			for dec.More() {
				k, err := dec.Token()
				require.NoError(t, err, line)
				var v any
				require.NoError(t, dec.Decode(&v), line)
				keys[k.(string)]++
				if k == "level" {
					levels[v.(string)]++
				}
			}
			for k, n := range keys {
				assert.Equal(t, 1, n, "key %q in %s", k, line)
			}
		}
		assert.Positive(t, levels["DEBUG"], "debug lines: %v", levels)
		assert.Positive(t, levels["INFO"], "info lines: %v", levels)
	})
	t.Run("--log-level warn", func(t *testing.T) {
		addr := closedPort(t)
		d := runInProcess(t, writeConfig(t, fmt.Sprintf(device, addr)), "warn")
		c, err := api.NewClient(addr, "")
		require.NoError(t, err)
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			_, err := c.Health(context.Background())
			assert.NoError(ct, err)
		}, 20*time.Second, 20*time.Millisecond, "serving")
		d.stop(t)
		assert.NotContains(t, d.logs.String(), `"level":"INFO"`)
		assert.NotContains(t, d.logs.String(), `"level":"DEBUG"`)
	})
	t.Run("a bad --log-level", func(t *testing.T) {
		_, err := runCmd(t, "run", "--log-level", "verbose", "-c", writeConfig(t, fmt.Sprintf(device, "127.0.0.1:0")))
		assert.EqualError(t, err, `--log-level: "verbose" is not one of debug, info, warn, error`)
	})
}

// TestRunPortInUse: an API port in use fails iotod run at once, with an
// error naming the address, before anything opens: no broker, no store
// folder (nor its lock), no socket, no log line.
func TestRunPortInUse(t *testing.T) {
	testenv.NeedBadger(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = taken.Close() }()
	cfg := writeConfig(t, fmt.Sprintf(`site: cli-test
schema: schema.json5
storage:
  local: {type: badger, path: data}
  cloud: {type: badger, path: cloud, side: cloud, site: cloud}
broker: {listen: "127.0.0.1:0", anonymous: true, persistence: broker}
api:
  listen: %s
  socket: api.sock
`, taken.Addr()))
	logs := &syncBuffer{}
	err = runDaemon(context.Background(), func() {}, []string{cfg}, time.Second, logs, "")
	require.ErrorContains(t, err, "api: listen on "+taken.Addr().String()+": ")
	entries, err := os.ReadDir(filepath.Dir(cfg))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"pipelines.yaml", "schema.json5"}, names, "nothing was opened")
	assert.Empty(t, logs.String())
}
