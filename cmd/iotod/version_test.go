package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// execRoot runs the root command in process with args and returns its
// standard output.
func execRoot(t *testing.T, args ...string) string {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	require.NoError(t, root.Execute(), out.String())
	return out.String()
}

// wantFlavour is the flavour of the test binary: device under -tags device.
func wantFlavour() string {
	if len(cloudStorage()) == 0 {
		return "device"
	}
	return "full"
}

// iotod version and iotod --version print the same lines: version,
// commit, Go version, platform, flavour, then every built-in plugin, one
// a line; --json the same facts.
func TestVersionCommand(t *testing.T) {
	text := execRoot(t, "version")
	for _, want := range []string{
		"version:  ", "commit:   ",
		"go:       " + runtime.Version() + "\n",
		"platform: " + runtime.GOOS + "/" + runtime.GOARCH,
		"flavour:  " + wantFlavour() + "\n",
		"plugins:\n",
	} {
		assert.Contains(t, text, want)
	}
	reg, err := components()
	require.NoError(t, err)
	require.NotEmpty(t, reg.Factories())
	for _, f := range reg.Factories() {
		assert.Contains(t, text, "\n  "+string(f.Kind())+"/"+f.Type()+"\n")
	}
	assert.Contains(t, text, "\n  storage/sqlite\n")

	assert.Equal(t, text, execRoot(t, "--version"), "--version prints what version does")

	var got buildFacts
	require.NoError(t, json.Unmarshal([]byte(execRoot(t, "version", "--json")), &got))
	assert.Equal(t, runtime.Version(), got.Go)
	assert.Equal(t, runtime.GOOS, got.OS)
	assert.Equal(t, runtime.GOARCH, got.Arch)
	assert.Equal(t, wantFlavour(), got.Flavour)
	assert.Len(t, got.Plugins, len(reg.Factories()))
	assert.Contains(t, got.Plugins, "storage/badger")
	assert.NotEmpty(t, got.Version)
	assert.NotEmpty(t, got.Commit)
}

// Without -X, the version and commit come from the build's stamp; -X
// values win over it; nothing at all gives devel and unknown.
func TestVersionStamp(t *testing.T) {
	info := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/iotod/iotod", Version: "v0.0.0-20261206183728-376dc54bdf60+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "376dc54bdf6058a3f2391bf0922d2fcead2e4aa4"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	b := stamp("", "", info)
	assert.Equal(t, "v0.0.0-20261206183728-376dc54bdf60+dirty", b.Version)
	assert.Equal(t, "376dc54bdf6058a3f2391bf0922d2fcead2e4aa4", b.Commit)
	assert.True(t, b.Modified)

	b = stamp("1.4.0", "abc123", info)
	assert.Equal(t, "1.4.0", b.Version)
	assert.Equal(t, "abc123", b.Commit)
	var text strings.Builder
	require.NoError(t, b.writeText(&text))
	assert.Contains(t, text.String(), "version:  1.4.0\ncommit:   abc123 (modified)\n")

	b = stamp("", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}})
	assert.Equal(t, "devel", b.Version)
	assert.Equal(t, "unknown", b.Commit)
	assert.False(t, b.Modified)
	assert.Equal(t, "devel", stamp("", "", nil).Version)
}

// A binary linked with -X main.version and -X main.commit (as make release
// links them) prints those values, in text, with --version and as JSON.
func TestVersionLinkedValues(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "iotod")
	ldflags := "-X main.version=9.8.7-test -X main.commit=0123456789abcdef"
	out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	for _, args := range [][]string{{"version"}, {"--version"}} {
		res := runCLI(t, bin, args...)
		require.Zero(t, res.code, res.stderr)
		assert.True(t, strings.HasPrefix(res.stdout, "version:  9.8.7-test\ncommit:   0123456789abcdef"), "%v: %s", args, res.stdout)
		assert.Contains(t, res.stdout, "flavour:  full\n")
		assert.Contains(t, res.stdout, "\n  storage/dynamodb\n")
	}
	res := runCLI(t, bin, "version", "--json")
	require.Zero(t, res.code, res.stderr)
	var got buildFacts
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &got))
	assert.Equal(t, "9.8.7-test", got.Version)
	assert.Equal(t, "0123456789abcdef", got.Commit)
	assert.Equal(t, "full", got.Flavour)
}
