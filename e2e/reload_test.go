package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
)

// rewrite replaces old with new in node n's config file (once; the test
// fails if old is not there).
func rewrite(t *testing.T, n *node, base, old, new string) {
	t.Helper()
	require.Contains(t, base, old)
	require.NoError(t, os.WriteFile(n.cfg, []byte(strings.Replace(base, old, new, 1)), 0o600))
}

// reloads counts the reloads node n logged.
func reloads(n *node) int { return strings.Count(n.logText(), `msg="configuration reloaded"`) }

// TestReloadUnderLoad reloads the device and the cloud worker (which runs
// the embedded broker) 50 times in turn while both sides write: through
// the API, through `iotod reload` and through SIGHUP, changing a batch
// stage (its pipeline restarts) and now and then the device's transport
// (every pipeline restarts on a new MQTT client). Afterwards every
// acknowledged write is on the other side exactly once at its latest
// version, and the broker never restarted: the device's last connection
// outlived the cloud's reloads after it.
func TestReloadUnderLoad(t *testing.T) {
	r := newRig(t, inCloud, 1, "dev-1")
	dev, cloud := r.devices["dev-1"], r.cloud()
	devBase, err := os.ReadFile(dev.cfg)
	require.NoError(t, err)
	cloudBase, err := os.ReadFile(cloud.cfg)
	require.NoError(t, err)
	up, down := readingLoad(t, dev, "dev-1", 3), commandLoad(t, cloud, "dev-1", 1)
	ctx := context.Background()
	reconnect := "reconnect_max: 1s" // the device's transport, as it is now
	for i := range 50 {
		n, base, wantRestarted := dev, string(devBase), "up"
		if i%2 == 1 {
			n, base, wantRestarted = cloud, string(cloudBase), "down"
		}
		if n == dev {
			if i%10 == 8 {
				reconnect = fmt.Sprintf("reconnect_max: %dms", 1000+i)
			}
			base = strings.Replace(base, "reconnect_max: 1s", reconnect, 1)
		}
		rewrite(t, n, base, "delay: 20ms", fmt.Sprintf("delay: %dms", 21+i))
		switch i % 10 {
		case 3, 8: // the command line
			out, err := n.cli("reload")
			require.NoError(t, err, "reload %d", i)
			require.Contains(t, out, "restarted: ")
			require.Contains(t, out, wantRestarted)
		case 5, 9: // SIGHUP
			before := reloads(n)
			n.mu.Lock()
			require.NoError(t, n.cmd.Process.Signal(syscall.SIGHUP))
			n.mu.Unlock()
			eventually(t, 30*time.Second, fmt.Sprintf("reload %d on SIGHUP", i), func() bool { return reloads(n) > before })
		default: // the API
			got, err := n.client().Reload(ctx)
			require.NoError(t, err, "reload %d", i)
			require.Contains(t, got.Reloaded.Restarted, wantRestarted, "reload %d", i)
			if n == dev && i%10 != 8 {
				require.Equal(t, []string{"apply"}, got.Reloaded.Unchanged, "reload %d: the other pipeline ran on", i)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, 25, reloads(dev))
	require.Equal(t, 25, reloads(cloud))
	converge(t, "50 reloads", dev, cloud, up, down)
	require.Equal(t, 1.0, dev.metric("iotod_mqtt_connections_total"),
		"the device's connection since its last transport change outlived the cloud's reloads: the broker kept running")
	require.NotContains(t, dev.logText()+cloud.logText(), "level=ERROR")
}

// TestReloadBadInput: a broken file, a change only a restart can make and
// a reload during a catch-up. The first two change nothing and say why;
// the third loses nothing.
func TestReloadBadInput(t *testing.T) {
	r := newRig(t, inCloud, 1, "dev-1")
	dev, cloud := r.devices["dev-1"], r.cloud()
	base, err := os.ReadFile(dev.cfg)
	require.NoError(t, err)
	ctx := context.Background()

	// A broken file: the error names the file and line, nothing changes.
	broken := strings.Replace(string(base), "  apply:\n", "  apply:\n    from: [unclosed\n", 1)
	require.NoError(t, os.WriteFile(dev.cfg, []byte(broken), 0o600))
	_, err = dev.cli("reload")
	require.Error(t, err)
	line := 1 + strings.Count(broken[:strings.Index(broken, "[unclosed")], "\n")
	m := regexp.MustCompile(`iotod\.yaml:(\d+): `).FindStringSubmatch(err.Error())
	require.NotNil(t, m, "the error names the file and line: %v", err)
	// The YAML parser names the line of the key whose value is broken.
	require.Contains(t, []string{fmt.Sprint(line - 1), fmt.Sprint(line)}, m[1], "the line of the broken value, or of its key: %v", err)
	require.Contains(t, err.Error(), "nothing changed")

	// A store's path: a restart is needed, nothing changes.
	rewrite(t, dev, string(base), "path: ./device", "path: ./elsewhere")
	_, err = dev.cli("reload")
	require.ErrorContains(t, err, "storage/local changes")
	require.ErrorContains(t, err, "restart is needed")
	_, err = os.Stat(dev.dir + "/elsewhere")
	require.True(t, os.IsNotExist(err), "no store was opened at the new path")

	// Replication went on untouched.
	_, err = dev.client().Create(ctx, "Reading", db.Item{"deviceId": "dev-1", "id": "after-refusals", "value": 1}, nil)
	require.NoError(t, err)
	dev.sync(30 * time.Second)
	_, err = cloud.client().Get(ctx, "Reading", db.Item{"deviceId": "dev-1", "id": "after-refusals"}, nil)
	require.NoError(t, err)

	// A reload during a catch-up: the device comes back to 3000 commands
	// and its transport is replaced while it catches up.
	require.NoError(t, os.WriteFile(dev.cfg, base, 0o600))
	dev.stop()
	const commands = 3000
	for start := 0; start < commands; start += 500 {
		ops := make([]db.WriteOp, 0, 500)
		for i := start; i < start+500; i++ {
			ops = append(ops, db.WriteOp{Op: "upsert", Model: "Command", Item: db.Item{"deviceId": "dev-1", "id": fmt.Sprintf("c%05d", i), "command": "set", "n": i}})
		}
		_, err = cloud.client().Batch(ctx, ops)
		require.NoError(t, err)
	}
	dev.start()
	rewrite(t, dev, string(base), "reconnect_max: 1s", "reconnect_max: 2s")
	got, err := dev.client().Reload(ctx)
	for err != nil && strings.Contains(err.Error(), "not started yet") {
		time.Sleep(20 * time.Millisecond)
		got, err = dev.client().Reload(ctx)
	}
	require.NoError(t, err)
	require.Equal(t, []string{"link"}, got.Reloaded.Transports)
	dev.sync(2 * time.Minute)
	props := db.Item{"deviceId": "dev-1"}
	require.Equal(t, commands, count(t, dev.client(), "Command", props), "every command reached the device")
	sameItems(t, "commands", items(t, cloud.client(), "Command", props), items(t, dev.client(), "Command", props))
}
