package main

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// p8Bar is P8's bar for the device binary: 25 MiB (make release enforces
// it on every released platform; packaging/release_test.go runs that).
const p8Bar = 26214400

// The store packages each build links, and what must never be in a device
// build: per store, the packages that would be linked with it.
var (
	storePackages = map[string][]string{
		"badger": {"github.com/dgraph-io/badger/v4", "github.com/iotod/iotod/plugins/storage/badger",
			"github.com/mochi-mqtt/server/v2/hooks/storage/badger"},
		"sqlite":   {"modernc.org/sqlite", "github.com/iotod/iotod/plugins/storage/sqlite"},
		"dynamodb": {"github.com/iotod/iotod/plugins/storage/dynamodb", "github.com/aws/aws-sdk-go-v2/service/dynamodb"},
		"postgres": {"github.com/iotod/iotod/plugins/storage/postgres", "github.com/jackc/pgx/v5"},
	}
	// notInDevice: a device build never links these (the status page's
	// browser tests drive chromedp, the e2e tests only).
	notInDevice = []string{"github.com/chromedp/chromedp"}
)

// deps lists the packages `go build ./cmd/iotod` links for goarch, with
// -tags device when device.
func deps(t *testing.T, goarch string, device bool) []string {
	t.Helper()
	args := []string{"list", "-deps"}
	if device {
		args = append(args, "-tags", "device")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "GOARM=7", "CGO_ENABLED=0")
	out, err := cmd.Output()
	require.NoError(t, err, "go %s (GOARCH=%s)", strings.Join(args, " "), goarch)
	return strings.Fields(string(out))
}

// Each build links exactly its stores: a 64-bit device build badger alone,
// a 32-bit one (arm, 386) SQLite alone, the full build all four, on every
// platform. Checked on the package lists go build uses (go list -deps), so
// it needs no build.
func TestBuildStoreSets(t *testing.T) {
	all := []string{"badger", "sqlite", "dynamodb", "postgres"}
	for _, tc := range []struct {
		goarch string
		device bool
		want   []string
	}{
		{"amd64", true, []string{"badger"}},
		{"arm64", true, []string{"badger"}},
		{"arm", true, []string{"sqlite"}},
		{"386", true, []string{"sqlite"}},
		{"amd64", false, all},
		{"arm", false, all},
	} {
		name := map[bool]string{true: "device", false: "full"}[tc.device] + "-" + tc.goarch
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := deps(t, tc.goarch, tc.device)
			for _, store := range all {
				for _, pkg := range storePackages[store] {
					assert.Equal(t, slices.Contains(tc.want, store), slices.Contains(got, pkg), "%s: %s (store %s)", name, pkg, store)
				}
			}
			for _, pkg := range notInDevice {
				assert.NotContains(t, got, pkg)
			}
			// The embedded broker is in every build; its persistence only
			// where badger is.
			assert.Contains(t, got, "github.com/iotod/iotod/broker")
			assert.Equal(t, slices.Contains(tc.want, "badger"), slices.Contains(got, "github.com/iotod/iotod/bench"),
				"the benchmarks run on badger: a 32-bit device build leaves them out")
		})
	}
}

// buildDevice builds the device binary for goarch as make build-device
// does (stripped, -trimpath) and returns its path and size.
func buildDevice(t *testing.T, goarch string) (string, int64) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "iotod-device-"+goarch)
	cmd := exec.Command("go", "build", "-tags", "device", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build -tags device (GOARCH=%s): %s", goarch, out)
	st, err := os.Stat(bin)
	require.NoError(t, err)
	t.Logf("device binary for linux/%s: %d bytes (%.2f MiB; P8: %d)", goarch, st.Size(), float64(st.Size())/(1<<20), p8Bar)
	return bin, st.Size()
}

// modules are the modules a binary was built from (go version -m).
func modules(t *testing.T, bin string) []string {
	t.Helper()
	info, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	var out []string
	for _, m := range info.Deps {
		out = append(out, m.Path)
	}
	return out
}

// The 64-bit device build (`make build-device`: -tags device, stripped)
// has badger and none of SQLite or the cloud stores: it lists badger alone,
// and a config, init, plugins describe or bench naming another store is
// told that this build does not include it. It is within P8's bar.
func TestDeviceBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the device binary")
	}
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skipf("runs a linux 64-bit device binary; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	bin, size := buildDevice(t, runtime.GOARCH)
	assert.LessOrEqual(t, size, int64(p8Bar), "P8: the device binary is over 25 MiB")
	mods := modules(t, bin)
	assert.Contains(t, mods, "github.com/dgraph-io/badger/v4")
	for _, m := range []string{"modernc.org/sqlite", "modernc.org/libc", "github.com/jackc/pgx/v5", "github.com/aws/aws-sdk-go-v2", "github.com/chromedp/chromedp"} {
		assert.NotContains(t, mods, m)
	}

	list := runCLI(t, bin, "plugins", "list")
	require.Zero(t, list.code, list.stderr)
	assert.Regexp(t, `(?m)^storage +badger `, list.stdout)
	for _, typ := range []string{"sqlite", "dynamodb", "postgres"} {
		assert.NotRegexp(t, `(?m)^storage +`+typ+` `, list.stdout)
	}
	for _, typ := range []string{"mqtt", "policy", "batch", "webhook", "plugin"} {
		assert.Contains(t, list.stdout, typ)
	}
	version := runCLI(t, bin, "version")
	assert.Contains(t, version.stdout, "flavour:  device\nplugins:\n  storage/badger\n  transport/")

	const noSQLite = `storage type "sqlite" is not in this device build (64-bit device builds include badger, not sqlite; the full build, iotod, has both)`
	describe := runCLI(t, bin, "plugins", "describe", "storage/sqlite")
	assert.NotZero(t, describe.code)
	assert.Contains(t, describe.stderr, noSQLite)
	describe = runCLI(t, bin, "plugins", "describe", "storage/dynamodb")
	assert.Contains(t, describe.stderr, `storage type "dynamodb" is not in this device build (device builds leave out the cloud stores and their SDKs; the full build, iotod, has them)`)

	cfg := writeConfig(t, strings.Replace(allInOneConfig, "  local: {type: badger, path: dev, durability: sync}",
		"  local: {type: sqlite, path: dev.db, durability: sync}", 1))
	res := runCLI(t, bin, "validate", "-c", cfg)
	require.NotZero(t, res.code)
	assert.Contains(t, res.stderr, `:4: storage.local.type: `+noSQLite)
	cfg = writeConfig(t, strings.Replace(allInOneConfig, "  cloud: {type: badger, path: cloud, durability: sync, side: cloud, site: cloud}",
		"  cloud: {type: dynamodb, table: iotod, side: cloud, site: cloud}", 1))
	res = runCLI(t, bin, "validate", "-c", cfg)
	require.NotZero(t, res.code)
	assert.Contains(t, res.stderr, `storage.cloud.type: storage type "dynamodb" is not in this device build`)
	good := runCLI(t, bin, "validate", "-c", writeConfig(t, allInOneConfig))
	assert.Zero(t, good.code, good.stderr)

	dir := t.TempDir()
	initRes := runCLI(t, bin, "init", "--dir", dir, "--store", "sqlite")
	assert.NotZero(t, initRes.code)
	assert.Equal(t, `iotod: init: --store "sqlite": `+noSQLite+"\n", initRes.stderr)
	assert.NoFileExists(t, filepath.Join(dir, "pipelines.yaml"))
	initRes = runCLI(t, bin, "init", "--dir", dir)
	require.Zero(t, initRes.code, initRes.stderr)
	assert.Contains(t, initRes.stdout, "store badger")

	bench := runCLI(t, bin, "bench", "--help")
	assert.NotContains(t, bench.stdout, "dynamodb")
	bench = runCLI(t, bin, "bench", "db", "--store", "sqlite", "--dir", t.TempDir(), "--duration", "10ms", "--runs", "1")
	assert.NotZero(t, bench.code)
	assert.Contains(t, bench.stderr, `bench db: storage type "sqlite" is not in this device build`)
}

// The 32-bit device build has SQLite and neither badger nor the cloud
// stores; nor the broker's persistence and the benchmarks, which need
// badger: each says so. Built for 386, which runs on an amd64 machine,
// in place of arm (TestBuildStoreSets checks arm's packages are the same
// set). It is within P8's bar.
func TestDeviceBuild32(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the device binary")
	}
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "386") {
		t.Skipf("runs a linux/386 device binary, which needs a linux amd64 or 386 machine; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	bin, size := buildDevice(t, "386")
	assert.LessOrEqual(t, size, int64(p8Bar), "P8: the device binary is over 25 MiB")
	mods := modules(t, bin)
	assert.Contains(t, mods, "modernc.org/sqlite")
	for _, m := range []string{"github.com/dgraph-io/badger/v4", "github.com/dgraph-io/ristretto/v2", "github.com/jackc/pgx/v5", "github.com/aws/aws-sdk-go-v2"} {
		assert.NotContains(t, mods, m)
	}

	list := runCLI(t, bin, "plugins", "list")
	require.Zero(t, list.code, list.stderr)
	assert.Regexp(t, `(?m)^storage +sqlite `, list.stdout)
	assert.NotRegexp(t, `(?m)^storage +badger `, list.stdout)

	const noBadger = `storage type "badger" is not in this device build (32-bit device builds include sqlite, not badger, which cannot run on 32-bit)`
	describe := runCLI(t, bin, "plugins", "describe", "storage/badger")
	assert.Contains(t, describe.stderr, noBadger)
	res := runCLI(t, bin, "validate", "-c", writeConfig(t, allInOneConfig))
	require.NotZero(t, res.code)
	assert.Contains(t, res.stderr, `:4: storage.local.type: `+noBadger)

	sqliteOnly := strings.NewReplacer(
		"  local: {type: badger, path: dev, durability: sync}", "  local: {type: sqlite, path: dev.db, durability: sync}",
		"  cloud: {type: badger, path: cloud, durability: sync, side: cloud, site: cloud}", "  cloud: {type: sqlite, path: cloud.db, durability: sync, side: cloud, site: cloud}",
	).Replace(allInOneConfig)
	good := runCLI(t, bin, "validate", "-c", writeConfig(t, sqliteOnly))
	assert.Zero(t, good.code, good.stderr)
	persist := runCLI(t, bin, "validate", "-c", writeConfig(t, sqliteOnly+"broker:\n  listen: 127.0.0.1:0\n  anonymous: true\n  persistence: ./broker\n"))
	assert.NotZero(t, persist.code)
	assert.Contains(t, persist.stderr, "broker keeps sessions in badger: badger is not in this device build (32-bit device builds include sqlite, not badger, which needs a 64-bit platform); leave persistence empty")

	dir := t.TempDir()
	initRes := runCLI(t, bin, "init", "--dir", dir, "--store", "badger")
	assert.Equal(t, `iotod: init: --store "badger": `+noBadger+"\n", initRes.stderr)
	initRes = runCLI(t, bin, "init", "--dir", dir)
	require.Zero(t, initRes.code, initRes.stderr)
	assert.Contains(t, initRes.stdout, "store sqlite")

	bench := runCLI(t, bin, "bench", "db", "--store", "sqlite")
	assert.NotZero(t, bench.code)
	assert.Contains(t, bench.stderr, "iotod: bench: the benchmarks are not in this device build (32-bit device builds include sqlite, not badger")
}

// memory_limit in the config sets the Go runtime's soft memory limit of
// iotod run (the device's budget); the log says so.
func TestMemoryLimitIsApplied(t *testing.T) {
	bin := buildIotod(t)
	d := startDaemon(t, bin, writeConfig(t, "memory_limit: 48MB\n"+allInOneConfig))
	assert.Contains(t, d.stderr.String(), `msg="go memory limit set" memory_limit=48MB`)
	d.stop(t)
}
