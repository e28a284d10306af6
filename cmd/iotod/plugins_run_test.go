package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/schema"
)

// External plugins wired by YAML alone, in a real iotod run: the example
// redact stage on the device's up pipeline removes a field (age) before
// it leaves, the example notify trigger on the cloud's ingest pipeline
// writes each applied change; when iotod is SIGKILLed, its plugin
// processes die with it (no orphans).
func TestExternalPluginsInARun(t *testing.T) {
	bin := buildIotod(t)
	dir := t.TempDir()
	for _, name := range []string{"redact", "notify"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "../../examples/plugins/"+name).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	notified := filepath.Join(dir, "changes.jsonl")
	config := strings.Replace(allInOneConfig, "      - batch: {delay: 20ms, count: 200}\n", fmt.Sprintf(`      - plugin/redact: {path: %q, config: {fields: [age]}}
      - batch: {delay: 20ms, count: 200}
`, filepath.Join(dir, "redact")), 1)
	config = strings.Replace(config, "    to: storage/cloud\n", fmt.Sprintf(`    to: storage/cloud
    triggers:
      - plugin/notify: {path: %q, config: {file: %q}}
`, filepath.Join(dir, "notify"), notified), 1)
	require.Contains(t, config, "plugin/redact")
	require.Contains(t, config, "plugin/notify")
	cfg := writeConfig(t, config)

	d := startDaemon(t, bin, cfg)
	client, err := api.NewClient(d.addr, "")
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 5 {
		_, err := client.Create(ctx, "User", db.Item{"accountId": "acme", "email": fmt.Sprintf("p%d@x.io", i), "name": "Pat", "age": 1000 + i}, nil)
		require.NoError(t, err)
	}
	require.NoError(t, client.Sync(ctx, 20*time.Second))
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(notified)
		return strings.Count(string(b), "\n") == 5
	}, 15*time.Second, 20*time.Millisecond, "the notify plugin wrote each applied change")
	b, err := os.ReadFile(notified)
	require.NoError(t, err)
	assert.NotContains(t, string(b), `"age"`, "redacted before it left the device")
	assert.Contains(t, string(b), `"name":"Pat"`)

	pids := pluginPids(t, dir)
	require.Len(t, pids, 2, "one process per plugin: %v", pids)
	require.NoError(t, d.cmd.Process.Kill())
	<-d.done
	require.Eventually(t, func() bool {
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil && !zombie(pid) {
				return false
			}
		}
		return true
	}, 5*time.Second, 20*time.Millisecond, "the plugins died with iotod")

	cloud := openStore(t, filepath.Dir(cfg), "cloud", schema.SideCloud, "cloud")
	users, err := findAll(ctx, cloud, "User", db.Item{"accountId": "acme"}, nil)
	require.NoError(t, err)
	require.Len(t, users.Items, 5)
	for _, u := range users.Items {
		assert.Nil(t, u["age"], "the cloud never got the age")
		assert.Equal(t, "Pat", u["name"])
	}
}

// pluginPids lists the processes whose executable is in dir.
func pluginPids(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && filepath.Dir(exe) == dir {
			out = append(out, pid)
		}
	}
	return out
}

// zombie reports whether pid has exited and waits to be reaped.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] == "Z"
}

// iotod validate has each external plugin check its own config, and
// reports a refusal, a missing binary or a checksum mismatch with the
// entry's file and line; a good config passes.
func TestValidateChecksPluginConfigs(t *testing.T) {
	bin := buildIotod(t)
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "redact"), "../../examples/plugins/redact").CombinedOutput()
	require.NoError(t, err, "%s", out)
	with := func(stage string) string {
		return strings.Replace(allInOneConfig, "      - batch: {delay: 20ms, count: 200}\n", "      - "+stage+"\n      - batch: {delay: 20ms, count: 200}\n", 1)
	}
	good := writeConfig(t, with(fmt.Sprintf(`plugin/redact: {path: %q, config: {fields: [age]}}`, filepath.Join(dir, "redact"))))
	res := runCLI(t, bin, "validate", "-c", good)
	require.Zero(t, res.code, res.stderr)
	assert.Contains(t, res.stdout, "plugin/redact")

	for _, tc := range []struct{ stage, want string }{
		{fmt.Sprintf(`plugin/redact: {path: %q, config: {colour: blue}}`, filepath.Join(dir, "redact")), `unknown field "colour"`},
		{fmt.Sprintf(`plugin/redact: {path: %q, config: {}}`, filepath.Join(dir, "redact")), "give fields to remove"},
		{`plugin/redact: {path: no-such-plugin}`, "no-such-plugin"},
		{fmt.Sprintf(`plugin/redact: {path: %q, sha256: %q, config: {fields: [a]}}`, filepath.Join(dir, "redact"), strings.Repeat("ab", 32)), "SHA-256"},
	} {
		cfg := writeConfig(t, with(tc.stage))
		res := runCLI(t, bin, "validate", "-c", cfg)
		assert.Equal(t, 1, res.code, "%s: %s", tc.stage, res.stdout)
		assert.Contains(t, res.stderr, tc.want)
		assert.Contains(t, res.stderr, cfg+":13: pipelines.up.stages[1].plugin/redact", "file:line and key path")
	}
}
