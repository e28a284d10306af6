package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The device build (`make build-device`: -tags device, stripped) leaves
// out the cloud-only DynamoDB store and its SDK: it lists no dynamodb
// plugin, refuses a config that names one with the types it has, and
// still runs the all-in-one device pieces. Its size is logged (P8's
// figure is in docs/benchmarks.md).
func TestDeviceBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the device binary")
	}
	bin := filepath.Join(t.TempDir(), "iotod-device")
	out, err := exec.Command("go", "build", "-tags", "device", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build -tags device: %s", out)
	st, err := os.Stat(bin)
	require.NoError(t, err)
	t.Logf("device binary: %.1f MB", float64(st.Size())/1e6)

	list := runCLI(t, bin, "plugins", "list")
	require.Zero(t, list.code, list.stderr)
	assert.NotContains(t, list.stdout, "dynamodb")
	for _, typ := range []string{"badger", "sqlite", "mqtt", "policy", "batch", "webhook", "plugin"} {
		assert.Contains(t, list.stdout, typ)
	}
	bench := runCLI(t, bin, "bench", "--help")
	assert.NotContains(t, bench.stdout, "dynamodb")

	cfg := writeConfig(t, strings.Replace(allInOneConfig, "  cloud: {type: badger, path: cloud, durability: sync, side: cloud, site: cloud}",
		"  cloud: {type: dynamodb, table: iotod, side: cloud, site: cloud}", 1))
	res := runCLI(t, bin, "validate", "-c", cfg)
	require.NotZero(t, res.code)
	assert.Contains(t, res.stderr+res.stdout, "dynamodb")
	assert.Contains(t, res.stderr+res.stdout, `unknown storage type "dynamodb" (known: badger, sqlite)`)

	good := runCLI(t, bin, "validate", "-c", writeConfig(t, allInOneConfig))
	assert.Zero(t, good.code, good.stderr)
}

// memory_limit in the config sets the Go runtime's soft memory limit of
// iotod run (the device's budget); the log says so.
func TestMemoryLimitIsApplied(t *testing.T) {
	bin := buildIotod(t)
	d := startDaemon(t, bin, writeConfig(t, "memory_limit: 48MB\n"+allInOneConfig))
	assert.Contains(t, d.stderr.String(), `msg="go memory limit set" memory_limit=48MB`)
	d.stop(t)
}
