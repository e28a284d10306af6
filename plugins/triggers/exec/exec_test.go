package exec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBatchOnStdinWithEnv(t *testing.T) {
	tr, dir := newTrigger(t, `cat > "$OUT/stdin"; env > "$OUT/env"; pwd > "$OUT/pwd"`, func(c *Config) {
		c.Filter.Models = []string{"Reading", "User"}
		c.Env["EXTRA"] = "a value with spaces"
		c.Dir = "work" // relative to the config's folder
		require.NoError(t, os.Mkdir(filepath.Join(c.Env["OUT"], "work"), 0o700))
	})
	work := filepath.Join(dir, "work")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))

	require.JSONEq(t, `[
		{"model":"Reading","op":"create","key":{"pk":"r#1","sk":"t#1"},"item":{"value":1},
		 "version":{"wall":100,"counter":1,"origin":"pump-7"},"origin":"pump-7","time":100},
		{"model":"User","op":"remove","key":{"pk":"u#1","sk":"u#1"},
		 "version":{"wall":101,"counter":1,"origin":"cloud"},"origin":"cloud","time":101},
		{"model":"Reading","op":"update","key":{"pk":"r#1","sk":"t#1"},"item":{"value":2},
		 "version":{"wall":103,"counter":1,"origin":"pump-8"},"origin":"pump-8","time":103}
	]`, readFile(t, filepath.Join(dir, "stdin")))

	env := envOf(t, filepath.Join(dir, "env"))
	require.Equal(t, "ingest", env["IOTOD_PIPELINE"])
	require.Equal(t, "Reading,User", env["IOTOD_MODELS"])
	require.Equal(t, "create,remove,update", env["IOTOD_OPS"])
	require.Equal(t, "cloud,pump-7,pump-8", env["IOTOD_ORIGINS"])
	require.Equal(t, "3", env["IOTOD_COUNT"])
	require.Equal(t, "a value with spaces", env["EXTRA"])
	require.Equal(t, os.Getenv("PATH"), env["PATH"], "iotod's environment is passed on")
	require.Equal(t, work, strings.TrimSpace(readFile(t, filepath.Join(dir, "pwd"))))
}

func TestDirDefaultsToConfigFolder(t *testing.T) {
	tr, dir := newTrigger(t, `pwd > "$OUT/pwd"`, nil)
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	require.Equal(t, dir, strings.TrimSpace(readFile(t, filepath.Join(dir, "pwd"))))
}

func TestPerChangeRunsInOrder(t *testing.T) {
	tr, dir := newTrigger(t, `{ cat; echo; } >> "$OUT/calls"; echo "$IOTOD_COUNT $IOTOD_MODELS $IOTOD_OPS $IOTOD_ORIGINS" >> "$OUT/env"`,
		func(c *Config) {
			c.PerChange = true
			c.Filter.Origin = "local"
		})
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))

	lines := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, "calls"))), "\n")
	require.Len(t, lines, 2, "one run per local change")
	var first, second map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first), "one object, not an array")
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
	require.Equal(t, "Reading", first["model"])
	require.Equal(t, "Account", second["model"])
	require.Equal(t, "1 Reading create pump-7\n1 Account upsert pump-7\n", readFile(t, filepath.Join(dir, "env")))
}

func TestPerChangeStopsAtFirstFailure(t *testing.T) {
	tr, dir := newTrigger(t, `echo run >> "$OUT/runs"; exit 7`, func(c *Config) { c.PerChange = true })
	err := tr.Fire(t.Context(), "ingest", changes())
	require.ErrorContains(t, err, "change 1 of 4 (Reading create")
	require.ErrorContains(t, err, "exit status 7")
	require.Equal(t, "run\n", readFile(t, filepath.Join(dir, "runs")))
}

func TestNothingSelectedRunsNothing(t *testing.T) {
	tr, dir := newTrigger(t, `touch "$OUT/ran"`, func(c *Config) { c.Filter.Models = []string{"Nope"} })
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	require.NoError(t, tr.Fire(t.Context(), "ingest", nil))
	require.NoFileExists(t, filepath.Join(dir, "ran"))
}
