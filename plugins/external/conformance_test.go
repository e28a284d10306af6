package external

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

// configured is the external stage factory whose default config runs a
// given plugin, so the suite's factory checks apply as to a built-in.
type configured struct {
	pipeline.Factory
	cfg func() *Config
}

func (f configured) NewDefaultConfig() pipeline.Config { return f.cfg() }

// The stage conformance suite, the same the built-in stages pass, runs
// against the example redact stage through the plugin wrapper: its own
// process, gRPC, the checks of its replies.
func TestRedactPluginConformance(t *testing.T) {
	bin := binaries(t)
	f := configured{Factory: NewStageFactory(), cfg: func() *Config {
		return testConfig(filepath.Join(bin, "redact"), map[string]any{"fields": []string{"password"}})
	}}
	plugintest.TestStage(t, f, f.NewDefaultConfig())
}

// closing is a factory whose components are closed when t ends: the
// suite does not close what it creates, and each of these is a process.
type closing struct {
	pipeline.Factory
	t *testing.T
}

func (f closing) Create(ctx context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	c, err := f.Factory.Create(ctx, set, cfg)
	if cl, ok := c.(interface{ Close(context.Context) error }); ok {
		f.t.Cleanup(func() { _ = cl.Close(context.Background()) })
	}
	return c, err
}

// The trigger conformance suite, the same the built-in triggers pass,
// runs against the example notify trigger through the plugin wrapper.
// Its hanging target is a FIFO nobody reads: opening it blocks in the
// plugin, so Fire returns only because the host ends the call on ctx.
// The test plugin cannot stand in for a refusing or hanging trigger: it
// has both Process and Fire, and the sdk keeps it as a stage whatever
// kind it was configured as ("no trigger configured").
func TestNotifyPluginTriggerConformance(t *testing.T) {
	bin := binaries(t)
	notify := func(file string) plugintest.TriggerTarget {
		return plugintest.TriggerTarget{Config: testConfig(filepath.Join(bin, "notify"), map[string]any{"file": file})}
	}
	plugintest.TestTrigger(t, plugintest.TriggerHarness{
		Factory:    closing{Factory: NewTriggerFactory(), t: t},
		Concurrent: true, // one write a batch, to a file opened for appending
		Working: func(t *testing.T) plugintest.TriggerTarget {
			file := filepath.Join(t.TempDir(), "changes.jsonl")
			target := notify(file)
			target.Received = func() [][]pipeline.Change { return readNotified(t, file) }
			return target
		},
		Hanging: func(t *testing.T) plugintest.TriggerTarget {
			fifo := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			return notify(fifo)
		},
		Refusals: []plugintest.TriggerRefusal{{
			Name: "FileCannotBeOpened",
			New: func(t *testing.T) plugintest.TriggerTarget {
				return notify(filepath.Join(t.TempDir(), "missing-folder", "changes.jsonl"))
			},
			Permanent: false, // the folder may be there next time
		}, {
			Name: "PermanentRefusal", // the test plugin says retrying cannot help
			New: func(t *testing.T) plugintest.TriggerTarget {
				return plugintest.TriggerTarget{Config: testConfig(filepath.Join(bin, "testplugin"), map[string]any{"mode": "refuse"})}
			},
			Permanent: true,
		}},
	})
}

// The transport conformance suite, the same the built-in transports
// pass, runs against the example httpbus transport through the plugin
// wrapper: each transport is a plugin process, a client of one hub (with
// a "*" token) that this test runs in a plugin process of its own too.
func TestHTTPBusPluginTransportConformance(t *testing.T) {
	bin := binaries(t)
	addr := freeAddr(t)
	hub := newTransport(t, testConfig(filepath.Join(bin, "httpbus"), map[string]any{
		"listen": addr, "clients": []map[string]any{{"token": "worker-token", "site": "*"}}}))
	require.Equal(t, 262144, hub.MaxPayload(), "the plugin's maximum reaches iotod")
	plugintest.TestTransport(t, plugintest.TransportFeatures{}, func(t *testing.T) pipeline.Transport {
		return newTransport(t, testConfig(filepath.Join(bin, "httpbus"), map[string]any{
			"url": "http://" + addr, "token": "worker-token", "connect_timeout": "3s"}))
	})
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// readNotified reads back the complete lines notify appended to file,
// each one change. The file does not mark where one Fire's batch ends, so
// each line is a delivery of its own (the suite checks the order of each
// batch's changes across deliveries).
func readNotified(t *testing.T, file string) [][]pipeline.Change {
	data, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Errorf("read what notify wrote: %v", err)
		return nil
	}
	text := string(data)
	text = text[:strings.LastIndexByte(text, '\n')+1] // a batch still being written
	var got [][]pipeline.Change
	for line := range strings.Lines(text) {
		var l struct {
			Pipeline string          `json:"pipeline"`
			Change   pipeline.Change `json:"change"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Pipeline == "" {
			t.Errorf("notify wrote a line that is not {pipeline, change}: %v: %q", err, line)
			continue
		}
		got = append(got, []pipeline.Change{l.Change})
	}
	return got
}
