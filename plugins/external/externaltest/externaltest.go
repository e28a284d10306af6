// Package externaltest runs iotod's conformance suites (pipeline/plugintest)
// against a plugin binary through the host's plugin wrapper
// (plugins/external), the way iotod runs it: in a process of its own,
// over gRPC, with the host's checks of its replies. A plugin author's
// whole conformance test is one function beside the plugin's main.go:
//
//	func TestConformance(t *testing.T) {
//		externaltest.Stage(t, externaltest.Build(t, "."), map[string]any{"fields": []string{"password"}})
//	}
//
// Build compiles the plugin (and skips the test under -short); Stage,
// Trigger and Transport run the stage, trigger and transport suites.
package externaltest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/iotod/iotod/plugins/external"
)

// Build builds the Go package pkg (a directory, e.g. ".", or an import
// path) into t.TempDir() and returns the binary's path; it skips the test
// under -short (building takes seconds). It fails t with go build's output
// when the build fails.
//
// go build runs in the test's working directory (the package under
// test's), with the go command go test puts first on the PATH.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("externaltest: building the plugin takes seconds; skipped under -short")
	}
	name := "plugin"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// Config is the host config that runs the binary at path with the
// plugin's own config (map as in the YAML `config`), with a quick restart
// delay and a short call timeout for tests.
//
// A relative path is made absolute: the suites give each component a
// temporary folder, against which the host would resolve it.
func Config(path string, config map[string]any) *external.Config {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	c := external.NewDefaultConfig()
	c.Path, c.Config = path, config
	c.RestartDelay = 10 * time.Millisecond
	c.CallTimeout = 2 * time.Second
	return &c
}
