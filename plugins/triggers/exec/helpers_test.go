package exec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

const site = "pump-7"

// newTrigger makes an exec trigger running script with /bin/sh from a new
// folder, which the script finds in $OUT. edit changes the config first.
func newTrigger(t *testing.T, script string, edit func(*Config)) (*Trigger, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "hook.sh")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o600))
	f := NewFactory()
	cfg := f.NewDefaultConfig().(*Config)
	cfg.Command = []string{"/bin/sh", path}
	cfg.Env = map[string]string{"OUT": dir}
	if edit != nil {
		edit(cfg)
	}
	tr, err := f.Create(t.Context(), pipeline.Settings{Site: site, Dir: dir}, cfg)
	require.NoError(t, err)
	return tr.(*Trigger), dir
}

// readFile returns the content of a file the script wrote.
func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

// envOf parses the output of env(1) into a map.
func envOf(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for line := range strings.Lines(readFile(t, path)) {
		if k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "="); ok {
			out[k] = v
		}
	}
	return out
}

// changes is a batch of four: two Reading, one User, one Account.
func changes() []pipeline.Change {
	v := func(wall int64, origin string) pipeline.Version {
		return pipeline.Version{Wall: wall, Counter: 1, Origin: origin}
	}
	return []pipeline.Change{
		{Seq: 1, Model: "Reading", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "r#1", SK: "t#1"},
			Item: json.RawMessage(`{"value":1}`), Version: v(100, site), Origin: site, Time: 100},
		{Seq: 2, Model: "User", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "u#1", SK: "u#1"},
			Version: v(101, "cloud"), Origin: "cloud", Time: 101},
		{Seq: 3, Model: "Account", Op: pipeline.OpUpsert, Key: pipeline.Key{PK: "a#1", SK: "a#1"},
			Item: json.RawMessage(`{"name":"x"}`), Version: v(102, site), Origin: site, Time: 102},
		{Seq: 4, Model: "Reading", Op: pipeline.OpUpdate, Key: pipeline.Key{PK: "r#1", SK: "t#1"},
			Item: json.RawMessage(`{"value":2}`), Version: v(103, "pump-8"), Origin: "pump-8", Time: 103},
	}
}
