package external

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the test plugin and the examples once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds plugin binaries")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "iotod-plugins-")
		if buildErr != nil {
			return
		}
		for name, pkg := range map[string]string{"testplugin": "./internal/testplugin", "redact": "../../examples/plugins/redact", "notify": "../../examples/plugins/notify"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	require.NoError(t, buildErr)
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// logBuffer collects the host's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func settings(t *testing.T, kind pipeline.Kind, name string) (pipeline.Settings, *logBuffer) {
	logs := &logBuffer{}
	return pipeline.Settings{ID: pipeline.ID{Type: TypeName, Name: name}, Kind: kind, Site: "dev-1",
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Dir: t.TempDir()}, logs
}

func testConfig(path string, conf map[string]any) *Config {
	c := NewDefaultConfig()
	c.Path, c.Config = path, conf
	c.RestartDelay = 10 * time.Millisecond
	c.CallTimeout = 2 * time.Second
	return &c
}

func newStage(t *testing.T, c *Config) (*Stage, *logBuffer, error) {
	t.Helper()
	require.NoError(t, c.Validate())
	set, logs := settings(t, pipeline.KindStage, "test")
	s, err := NewStageFactory().Create(context.Background(), set, c)
	if err != nil {
		return nil, logs, err
	}
	st := s.(*Stage)
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st, logs, nil
}

func batchOf(n int) *pipeline.Batch {
	b := &pipeline.Batch{V: pipeline.ProtocolVersion, ID: "b1", Site: "dev-1"}
	for i := range n {
		b.Changes = append(b.Changes, pipeline.Change{Seq: uint64(i + 1), Model: "User", Op: pipeline.OpUpsert,
			Key:     pipeline.Key{PK: "account#a", SK: fmt.Sprintf("user#%03d", i)},
			Item:    json.RawMessage(fmt.Sprintf(`{"name":"u%d","password":"secret%d"}`, i, i)),
			Version: pipeline.Version{Wall: 1700000000000 + int64(i), Origin: "dev-1"}, Origin: "dev-1"})
	}
	return b
}

// The example stage runs in its own process: it redacts the fields and
// refuses the models its config names; its config is checked by it.
func TestExampleRedactStage(t *testing.T) {
	bin := binaries(t)
	st, _, err := newStage(t, testConfig(filepath.Join(bin, "redact"), map[string]any{"fields": []string{"password"}, "refuse": []string{"Secret"}}))
	require.NoError(t, err)
	in := batchOf(3)
	in.Changes[1].Model = "Secret"
	out, err := st.Process(context.Background(), in)
	require.NoError(t, err)
	require.Len(t, out.Changes, 2)
	require.Len(t, out.Rejected, 1)
	assert.Equal(t, "Secret", out.Rejected[0].Model)
	assert.Contains(t, out.Rejected[0].Reason, "does not leave this site")
	for _, c := range out.Changes {
		assert.NotContains(t, string(c.Item), "password")
		assert.Contains(t, string(c.Item), `"name"`)
	}

	_, _, err = newStage(t, testConfig(filepath.Join(bin, "redact"), map[string]any{"colour": "blue"}))
	require.Error(t, err)
	assert.ErrorIs(t, err, pipeline.ErrInvalid)
	assert.Contains(t, err.Error(), `unknown field "colour"`, "the plugin's own config check, shown with the plugin's name")
	assert.Contains(t, err.Error(), "plugin/test")
}

// The example trigger gets whole batches and writes them.
func TestExampleNotifyTrigger(t *testing.T) {
	bin := binaries(t)
	file := filepath.Join(t.TempDir(), "changes.jsonl")
	c := testConfig(filepath.Join(bin, "notify"), map[string]any{"file": file})
	set, _ := settings(t, pipeline.KindTrigger, "notify")
	tr, err := NewTriggerFactory().Create(context.Background(), set, c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.(*Trigger).Close(context.Background()) })
	require.NoError(t, tr.(*Trigger).Fire(context.Background(), "ingest", batchOf(4).Changes))
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 4)
	assert.Contains(t, lines[3], `"user#003"`)
	assert.Contains(t, lines[0], `"pipeline":"ingest"`)
}

// Bad plugins: each gets a clear error naming the plugin, a configuration
// fault at start, a run-time fault as an error the caller retries (or,
// for a reply that breaks the contract, refuses).
func TestBadPlugins(t *testing.T) {
	bin := binaries(t)
	tp := filepath.Join(bin, "testplugin")
	notExec := filepath.Join(t.TempDir(), "not-executable")
	require.NoError(t, os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600))
	notPlugin := filepath.Join(t.TempDir(), "not-a-plugin")
	require.NoError(t, os.WriteFile(notPlugin, []byte("#!/bin/sh\necho hello\n"), 0o700))
	// A plugin of another protocol version: its handshake line says 99.
	otherVersion := filepath.Join(t.TempDir(), "other-version")
	require.NoError(t, os.WriteFile(otherVersion, []byte("#!/bin/sh\necho '1|99|tcp|127.0.0.1:1|grpc'\nsleep 5\n"), 0o700))

	for _, tc := range []struct {
		name string
		cfg  *Config
		want string
	}{
		{"missing binary", testConfig(filepath.Join(bin, "nope"), nil), "no such file"},
		{"not executable", testConfig(notExec, nil), "permission denied"},
		{"not a plugin", testConfig(notPlugin, nil), "plugin/test"},
		{"checksum", func() *Config {
			c := testConfig(tp, map[string]any{"mode": "ok"})
			c.SHA256 = strings.Repeat("0", 64)
			return c
		}(), "SHA-256"},
		{"config refused", testConfig(tp, map[string]any{"mode": "refuse-config"}), "this config is refused"},
		{"another protocol version", testConfig(otherVersion, nil), "another plugin protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "not a plugin" {
				tc.cfg.StartTimeout = 2 * time.Second
			}
			_, _, err := newStage(t, tc.cfg)
			require.Error(t, err)
			assert.ErrorIs(t, err, pipeline.ErrInvalid, "a configuration fault")
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "plugin/test", "names the plugin")
		})
	}

	// The right checksum is accepted.
	sum := sha256File(t, tp)
	c := testConfig(tp, map[string]any{"mode": "ok"})
	c.SHA256 = sum
	_, _, err := newStage(t, c)
	require.NoError(t, err)

	for _, tc := range []struct {
		mode, want string
		permanent  bool
	}{
		{"garbage", `returned a change it was not given: "SomethingElse"`, false},
		{"extra", "returned", false},
		{"refuse", "testplugin refuses this batch", true},
		{"hang", "deadline", false},
	} {
		t.Run("run-time "+tc.mode, func(t *testing.T) {
			cfg := testConfig(tp, map[string]any{"mode": tc.mode})
			cfg.CallTimeout = 300 * time.Millisecond
			st, _, err := newStage(t, cfg)
			require.NoError(t, err)
			before := st.p.client
			t0 := time.Now()
			_, err = st.Process(context.Background(), batchOf(2))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "plugin/test")
			assert.Equal(t, tc.permanent, pipeline.IsPermanent(err))
			assert.Less(t, time.Since(t0), 5*time.Second, "bounded by the call timeout")
			if tc.mode == "hang" {
				require.Eventually(t, func() bool { return before.Exited() }, 5*time.Second, 20*time.Millisecond,
					"a plugin that did not answer in time is stopped (the next call starts a new one)")
			}
		})
	}
}

// A plugin that dies mid-batch: the call fails (the caller keeps the
// batch), the plugin is started again, and the same batch goes through:
// nothing lost; the stage's output is the same as if it had not died.
func TestCrashedPluginIsRestarted(t *testing.T) {
	bin := binaries(t)
	marker := filepath.Join(t.TempDir(), "crashed")
	st, logs, err := newStage(t, testConfig(filepath.Join(bin, "testplugin"), map[string]any{"mode": "crash-once", "marker": marker}))
	require.NoError(t, err)
	in := batchOf(5)
	_, err = st.Process(context.Background(), in)
	require.Error(t, err, "the plugin died in the call")
	assert.False(t, pipeline.IsPermanent(err), "retryable: %v", err)
	var out *pipeline.Batch
	require.Eventually(t, func() bool {
		out, err = st.Process(context.Background(), in)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the restarted plugin takes the batch")
	require.Len(t, out.Changes, 5)
	for i, c := range out.Changes {
		assert.Equal(t, in.Changes[i].Key, c.Key)
	}
	assert.Contains(t, logs.String(), "plugin exited; it is started again")
}

// Closing the host side kills the plugin process.
func TestCloseStopsThePlugin(t *testing.T) {
	bin := binaries(t)
	st, _, err := newStage(t, testConfig(filepath.Join(bin, "testplugin"), map[string]any{"mode": "ok"}))
	require.NoError(t, err)
	pid := st.p.client.ReattachConfig().Pid
	require.NoError(t, st.Close(context.Background()))
	require.Eventually(t, func() bool { return !alive(pid) }, 5*time.Second, 20*time.Millisecond, "the plugin process is gone")
	_, err = st.Process(context.Background(), batchOf(1))
	assert.ErrorIs(t, err, pipeline.ErrClosed)
}

func sha256File(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
