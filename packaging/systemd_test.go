package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// execStart is the unit's command line: the binary at the path the install
// steps put it.
const execStart = "ExecStart=/usr/local/bin/iotod run -c /etc/iotod/pipelines.yaml\n"

// stubUnit writes iotod.service into a temporary folder with ExecStart on
// an executable stub there (systemd-analyze verify checks the binary
// exists), edited by replace (old, new pairs, each required to match), and
// returns its path.
func stubUnit(t *testing.T, replace ...string) string {
	t.Helper()
	unit, err := os.ReadFile("iotod.service")
	require.NoError(t, err)
	require.Equal(t, 1, bytes.Count(unit, []byte(execStart)), "iotod.service: want one %q", execStart)
	dir := t.TempDir()
	stub := filepath.Join(dir, "iotod")
	require.NoError(t, os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	text := strings.Replace(string(unit), execStart, "ExecStart="+stub+" run -c /etc/iotod/pipelines.yaml\n", 1)
	for i := 0; i+1 < len(replace); i += 2 {
		require.Contains(t, text, replace[i])
		text = strings.Replace(text, replace[i], replace[i+1], 1)
	}
	path := filepath.Join(dir, "iotod.service")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// analyze runs systemd-analyze with args in the unit's folder and returns
// its output and error.
func analyze(t *testing.T, unit string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("systemd-analyze", append(args, unit)...)
	cmd.Dir = filepath.Dir(unit)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestServiceUnit checks packaging/iotod.service with systemd's own
// checker: systemd-analyze verify finds nothing to say (a misspelt key, a
// bad value or a missing binary are reported on its output, some with
// status 0, so the output must be empty), and its offline security review
// rates the hardening at most 2.0 (docs/install.md quotes 1.5, "OK").
func TestServiceUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skipf("systemd-analyze is not installed (Debian package systemd): %v", err)
	}
	out, err := analyze(t, stubUnit(t), "verify", "--man=no")
	assert.NoError(t, err, out)
	assert.Empty(t, out, "systemd-analyze verify iotod.service")

	// systemctl reload sends SIGHUP, which iotod run takes as a reload.
	unit, err := os.ReadFile("iotod.service")
	require.NoError(t, err)
	assert.Contains(t, string(unit), "\nExecReload=/bin/kill -HUP $MAINPID\n")

	// The check is real: a typo, a bad value, a missing binary are caught.
	for _, bad := range [][]string{
		{"ProtectSystem=strict", "ProtectSytem=strict"},
		{"Restart=on-failure", "Restart=sometimes"},
		{"ExecReload=/bin/kill", "ExecReload=/nonexistent/kill"},
		{"ExecStart=/", "ExecStart=/nonexistent/"},
	} {
		out, _ := analyze(t, stubUnit(t, bad...), "verify", "--man=no")
		assert.NotEmpty(t, out, "verify says nothing of %s", bad[1])
	}

	out, err = analyze(t, stubUnit(t), "security", "--offline=true")
	if err != nil && strings.Contains(out, "offline") {
		t.Skipf("this systemd-analyze has no offline security review (systemd >= 250): %s", out)
	}
	require.NoError(t, err, out)
	m := regexp.MustCompile(`Overall exposure level for iotod\.service: (\d+\.\d+) (\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	level, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	t.Logf("systemd-analyze security: %s %s", m[1], m[2])
	assert.LessOrEqual(t, level, 2.0, "the unit's hardening was loosened:\n%s", out)
}
