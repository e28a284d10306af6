package exec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

// appendScript appends its stdin, a JSON array, and a newline to $OUT,
// holding a lock (a directory) so runs going at once do not interleave.
const appendScript = `#!/bin/sh
until mkdir "$OUT.lock" 2>/dev/null; do sleep 0.01; done
cat >> "$OUT"
echo >> "$OUT"
rmdir "$OUT.lock"
`

// scriptTarget is an exec trigger running script with out as $OUT.
func scriptTarget(t *testing.T, script string) (plugintest.TriggerTarget, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "received")
	cfg := NewFactory().NewDefaultConfig().(*Config)
	cfg.Command = []string{path}
	cfg.Env = map[string]string{"OUT": out}
	return plugintest.TriggerTarget{Config: cfg, Settings: pipeline.Settings{Dir: dir}}, out
}

func TestConformance(t *testing.T) {
	plugintest.TestTrigger(t, plugintest.TriggerHarness{
		Factory:    NewFactory(),
		Concurrent: true,
		Working: func(t *testing.T) plugintest.TriggerTarget {
			target, out := scriptTarget(t, appendScript)
			target.Received = func() [][]pipeline.Change { return readDeliveries(t, out) }
			return target
		},
		Hanging: func(t *testing.T) plugintest.TriggerTarget {
			target, _ := scriptTarget(t, "#!/bin/sh\nsleep 100\n")
			return target
		},
		Refusals: []plugintest.TriggerRefusal{{
			Name: "ExitStatus1",
			New: func(t *testing.T) plugintest.TriggerTarget {
				target, _ := scriptTarget(t, "#!/bin/sh\ncat >/dev/null\necho 'no space left on device' >&2\nexit 1\n")
				return target
			},
			Permanent: false, // the next run may find space
		}},
	})
}

// readDeliveries reads the complete lines of out, each the JSON array of
// one run's stdin.
func readDeliveries(t *testing.T, out string) [][]pipeline.Change {
	data, err := os.ReadFile(out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Errorf("read what the command received: %v", err)
		return nil
	}
	text := string(data)
	text = text[:strings.LastIndexByte(text, '\n')+1] // a run still writing
	var got [][]pipeline.Change
	for line := range strings.Lines(text) {
		var d []pipeline.Change
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Errorf("the command's stdin is not a JSON array of changes: %v: %q", err, line)
			continue
		}
		got = append(got, d)
	}
	return got
}
