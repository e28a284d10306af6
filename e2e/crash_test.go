package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadPhase is how long a write load runs between kills.
const loadPhase = time.Second

// kills is how many times each crash test kills its target.
const kills = 3

// TestBrokerRestartUnderLoad kills the broker during a write load on both
// sides and starts it again on the same port, several times: mosquitto
// (without persistence: it forgets every session), or, with the embedded
// broker, the cloud process that runs it (kill -9). After a sync every
// acknowledged write is on the other side exactly once, at its latest
// version.
func TestBrokerRestartUnderLoad(t *testing.T) {
	forBrokers(t, func(t *testing.T, kind brokerKind) {
		r := newRig(t, kind, 1, "dev-1")
		dev := r.devices["dev-1"]
		up, down := readingLoad(t, dev, "dev-1", 3), commandLoad(t, r.cloud(), "dev-1", 1)
		for range kills {
			time.Sleep(loadPhase)
			if kind == viaMosquitto {
				r.mosq.kill()
				time.Sleep(300 * time.Millisecond)
				r.mosq.start()
			} else {
				r.cloud().kill()
				time.Sleep(300 * time.Millisecond)
				r.cloud().start()
			}
		}
		time.Sleep(loadPhase)
		converge(t, "broker restarts", dev, r.cloud(), up, down)
		if n := dev.metric("iotod_mqtt_connections_total"); n < kills+1 {
			t.Errorf("the device connected %v times: the broker restarts did not cut it off", n)
		}
	})
}

// TestDeviceKilledUnderLoad kills the device process (SIGKILL) during a
// write load on both sides and starts it again, several times; the load
// goes on against each new process. It runs with the device on the store
// the tests choose (IOTOD_TEST_STORE) and on SQLite (a site named
// *-sqlite).
func TestDeviceKilledUnderLoad(t *testing.T) {
	for _, site := range []string{"dev-1", "dev-1-sqlite"} {
		t.Run(site, func(t *testing.T) {
			r := newRig(t, inCloud, 1, site)
			dev := r.devices[site]
			up, down := readingLoad(t, dev, site, 3), commandLoad(t, r.cloud(), site, 1)
			for range kills {
				time.Sleep(loadPhase)
				dev.kill()
				dev.start()
			}
			time.Sleep(loadPhase)
			converge(t, "device killed", dev, r.cloud(), up, down)
		})
	}
}

// TestCloudWorkerKilledUnderLoad kills the cloud worker (SIGKILL) during
// a write load on both sides while the broker stays up (mosquitto, or the
// embedded broker in a process of its own), and starts it again, several
// times.
func TestCloudWorkerKilledUnderLoad(t *testing.T) {
	kind := ownProcess
	if _, ok := haveMosquitto(); ok {
		kind = viaMosquitto
	}
	r := newRig(t, kind, 1, "dev-1")
	dev := r.devices["dev-1"]
	up, down := readingLoad(t, dev, "dev-1", 3), commandLoad(t, r.cloud(), "dev-1", 1)
	for range kills {
		time.Sleep(loadPhase)
		r.cloud().kill()
		time.Sleep(300 * time.Millisecond)
		r.cloud().start()
	}
	time.Sleep(loadPhase)
	converge(t, "worker killed ("+kind.String()+")", dev, r.cloud(), up, down)
}

// TestPluginTransportKilledUnderLoad replaces MQTT with the example
// external transport (examples/plugins/httpbus) and SIGKILLs its plugin
// processes during a write load on both sides: the device's client, then
// the cloud worker's hub, in turn. iotod starts each again (with
// backoff); after a sync every acknowledged write is on the other side
// exactly once, at its latest version.
func TestPluginTransportKilledUnderLoad(t *testing.T) {
	r := newRig(t, viaPlugin, 1, "dev-1")
	dev := r.devices["dev-1"]
	up, down := readingLoad(t, dev, "dev-1", 3), commandLoad(t, r.cloud(), "dev-1", 1)
	bin := httpbusBin(t)
	for i := range kills + 1 {
		time.Sleep(loadPhase)
		target := dev
		if i%2 == 1 {
			target = r.cloud()
		}
		pids := childrenRunning(t, target, bin)
		if len(pids) != 1 {
			t.Fatalf("%s runs %d transport plugin processes, want 1", target.name, len(pids))
		}
		if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "a new plugin process", func() bool {
			now := childrenRunning(t, target, bin)
			return len(now) == 1 && now[0] != pids[0]
		})
	}
	time.Sleep(loadPhase)
	converge(t, "transport plugin killed", dev, r.cloud(), up, down)
}

// childrenRunning lists the live processes of executable exe whose
// parent is n's process.
func childrenRunning(t *testing.T, n *node, exe string) []int {
	t.Helper()
	n.mu.Lock()
	parent := n.cmd.Process.Pid
	n.mu.Unlock()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if path, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err != nil || path != exe {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ")".
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[0] != "Z" && fields[1] == strconv.Itoa(parent) {
			out = append(out, pid)
		}
	}
	return out
}
