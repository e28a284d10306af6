// Package packaging holds what the release archives ship besides the
// binaries (the systemd unit, the archive's README) and the test of
// scripts/release.sh, which makes them (make release, docs/install.md).
package packaging

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testVersion = "0.0.0-releasetest+1"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"

	// p8Bar is P8's bar for the device binary: 25 MiB. make release
	// enforces it (its default DEVICE_MAX_BYTES), and TestRelease runs it
	// with that default: a device binary over it fails the test.
	p8Bar = 26214400
)

var platforms = []string{"linux/amd64", "linux/arm64", "linux/arm"}

// storeModules are the modules of each store: a device build links its
// platform's device store alone (badger on 64-bit, SQLite on arm), the
// full build every one.
var storeModules = map[string]string{
	"badger":   "github.com/dgraph-io/badger/v4",
	"sqlite":   "modernc.org/sqlite",
	"dynamodb": "github.com/aws/aws-sdk-go-v2/service/dynamodb",
	"postgres": "github.com/jackc/pgx/v5",
}

// deviceStore is the store of a platform's device build and device.yaml.
func deviceStore(platform string) string {
	if platform == "linux/arm" {
		return "sqlite" // badger refuses 32-bit
	}
	return "badger"
}

// release runs scripts/release.sh with env over the environment and
// returns its output and error.
func release(t *testing.T, env ...string) (string, error) {
	t.Helper()
	for _, tool := range []string{"bash", "tar", "gzip", "sha256sum", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("release.sh needs %s: %v", tool, err)
		}
	}
	// Cold, the six builds take minutes on a loaded 2-core machine: stop a
	// little before go test's -timeout would, to see the script's output.
	timeout := 30 * time.Minute
	if deadline, ok := t.Deadline(); ok {
		timeout = time.Until(deadline) - 30*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "scripts", "release.sh"))
	cmd.Env = append(os.Environ(), env...) // the last value of a name wins
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("release.sh %v, %s:\n%s", env, time.Since(start).Round(time.Second), out.String())
	return out.String(), err
}

// TestRelease runs make release's script into a temporary folder, with
// P8's bar for the device binaries, and checks the archives: one per
// platform with the expected files, the checksums, each example config's
// store (SQLite on 32-bit ARM), the flags each binary was built with, the
// stores each links (the device build its platform's alone), and, for this
// machine's platform, what the binaries print and that the example config
// validates in place.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds six binaries")
	}
	dist := t.TempDir()
	_, err := release(t, "VERSION="+testVersion, "COMMIT="+testCommit, "DIST="+dist,
		"PLATFORMS="+strings.Join(platforms, " "), "DEVICE_MAX_BYTES="+strconv.Itoa(p8Bar))
	require.NoError(t, err)

	var archives []string
	for _, p := range platforms {
		archives = append(archives, "iotod_"+testVersion+"_"+strings.ReplaceAll(p, "/", "_")+".tar.gz")
	}
	entries, err := os.ReadDir(dist)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, append(slices.Clone(archives), "SHA256SUMS"), names)

	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	require.NoError(t, err)
	assert.Len(t, strings.Split(strings.TrimSpace(string(sums)), "\n"), len(archives))
	check := exec.Command("sha256sum", "-c", "SHA256SUMS")
	check.Dir = dist
	out, err := check.CombinedOutput()
	require.NoError(t, err, "sha256sum -c: %s", out)
	assert.Equal(t, len(archives), strings.Count(string(out), ": OK\n"), string(out))

	want := []string{"README.md", "device.yaml", "iotod", "iotod-device", "iotod.service", "schema.json5"}
	for _, lic := range []string{"LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING"} {
		if _, err := os.Stat(filepath.Join("..", lic)); err == nil {
			want = append(want, lic)
		}
	}
	for i, p := range platforms {
		archive := filepath.Join(dist, archives[i])
		top := strings.TrimSuffix(archives[i], ".tar.gz")
		t.Run(p, func(t *testing.T) {
			list, err := exec.Command("tar", "tzf", archive).Output()
			require.NoError(t, err)
			wantList := []string{top + "/"}
			for _, f := range want {
				wantList = append(wantList, top+"/"+f)
			}
			assert.ElementsMatch(t, wantList, strings.Fields(string(list)))

			dir := t.TempDir()
			out, err := exec.Command("tar", "xzf", archive, "-C", dir).CombinedOutput()
			require.NoError(t, err, "tar xzf: %s", out)
			dir = filepath.Join(dir, top)

			cfg, err := os.ReadFile(filepath.Join(dir, "device.yaml"))
			require.NoError(t, err)
			store := deviceStore(p)
			assert.Contains(t, string(cfg), "\n    type: "+store+"\n")
			other := map[string]string{"badger": "sqlite", "sqlite": "badger"}[store]
			assert.NotContains(t, string(cfg), "type: "+other)
			assert.Contains(t, string(cfg), "schema: ${IOTOD_SCHEMA:-schema.json5}\n")
			assert.NotContains(t, string(cfg), "../")

			// How each binary was built (any platform's): its build info, its
			// ELF header and sections, the -X values in its data.
			goarch := strings.TrimPrefix(p, "linux/")
			for _, bin := range []string{"iotod", "iotod-device"} {
				path := filepath.Join(dir, bin)
				info, err := buildinfo.ReadFile(path)
				require.NoError(t, err, bin)
				settings := map[string]string{}
				for _, s := range info.Settings {
					settings[s.Key] = s.Value
				}
				assert.Equal(t, "linux", settings["GOOS"], bin)
				assert.Equal(t, goarch, settings["GOARCH"], bin)
				assert.Equal(t, "0", settings["CGO_ENABLED"], bin)
				assert.Equal(t, "true", settings["-trimpath"], bin)
				if goarch == "arm" {
					assert.Equal(t, "7", settings["GOARM"], bin)
				}
				if bin == "iotod-device" {
					assert.Equal(t, "device", settings["-tags"], bin)
				} else {
					assert.Empty(t, settings["-tags"], bin)
				}
				var mods []string
				for _, m := range info.Deps {
					mods = append(mods, m.Path)
				}
				for s, mod := range storeModules {
					want := bin == "iotod" || s == store
					assert.Equal(t, want, slices.Contains(mods, mod), "%s/%s: store %s (%s)", top, bin, s, mod)
				}

				f, err := elf.Open(path)
				require.NoError(t, err, bin)
				assert.Equal(t, map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM}[goarch], f.Machine, bin)
				assert.Nil(t, f.Section(".symtab"), "%s: -s strips the symbol table", bin)
				assert.Nil(t, f.Section(".debug_info"), "%s: -w drops DWARF", bin)
				for _, prog := range f.Progs {
					assert.NotEqual(t, elf.PT_INTERP, prog.Type, "%s: static, no dynamic loader", bin)
				}
				require.NoError(t, f.Close())

				data, err := os.ReadFile(path)
				require.NoError(t, err)
				assert.True(t, bytes.Contains(data, []byte(testVersion)), "%s: -X main.version", bin)
				assert.True(t, bytes.Contains(data, []byte(testCommit)), "%s: -X main.commit", bin)
				if bin == "iotod-device" {
					assert.LessOrEqual(t, len(data), p8Bar, "P8: %s/%s", top, bin)
					t.Logf("P8: %s/%s is %d bytes (%.2f MiB), the bar %d", top, bin, len(data), float64(len(data))/(1<<20), p8Bar)
				}
			}

			if runtime.GOOS != "linux" || runtime.GOARCH != goarch {
				return // the rest runs the binaries
			}
			for bin, flavour := range map[string]string{"iotod": "full", "iotod-device": "device"} {
				out, err := exec.Command(filepath.Join(dir, bin), "version").CombinedOutput()
				require.NoError(t, err, "%s version: %s", bin, out)
				assert.True(t, strings.HasPrefix(string(out), "version:  "+testVersion+"\ncommit:   "+testCommit+"\n"), "%s version:\n%s", bin, out)
				assert.Contains(t, string(out), "platform: "+p)
				assert.Contains(t, string(out), "flavour:  "+flavour+"\n")
				assert.Equal(t, flavour == "full", strings.Contains(string(out), "\n  storage/dynamodb\n"), "%s version:\n%s", bin, out)
				for s := range storeModules {
					assert.Equal(t, flavour == "full" || s == store, strings.Contains(string(out), "\n  storage/"+s+"\n"), "%s version:\n%s", bin, out)
				}
			}
			// The archive is self-contained: its config finds its schema.
			validate := exec.Command("./iotod-device", "validate", "-c", "device.yaml")
			validate.Dir = dir
			validate.Env = append(os.Environ(), "IOTOD_SCHEMA=", "IOTOD_DATA=")
			out, err = validate.CombinedOutput()
			require.NoError(t, err, "iotod-device validate: %s", out)
			assert.Contains(t, string(out), "ok: device.yaml")
		})
	}
}

// A device binary over the bar fails the release, naming the file and its
// size, and nothing is packaged.
func TestReleaseSizeBar(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dist := t.TempDir()
	out, err := release(t, "VERSION="+testVersion, "COMMIT="+testCommit, "DIST="+dist,
		"PLATFORMS=linux/arm64", "DEVICE_MAX_BYTES=1000000")
	require.Error(t, err)
	assert.Regexp(t, `iotod_0\.0\.0-releasetest\+1_linux_arm64/iotod-device \(the device build for linux/arm64\) is \d+ bytes \([\d.]+ MiB\): over the P8 bar of 1000000 bytes`, out)
	entries, err := os.ReadDir(dist)
	require.NoError(t, err)
	assert.Empty(t, entries)
}
