package e2e

import (
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
// goes on against each new process.
func TestDeviceKilledUnderLoad(t *testing.T) {
	r := newRig(t, inCloud, 1, "dev-1")
	dev := r.devices["dev-1"]
	up, down := readingLoad(t, dev, "dev-1", 3), commandLoad(t, r.cloud(), "dev-1", 1)
	for range kills {
		time.Sleep(loadPhase)
		dev.kill()
		dev.start()
	}
	time.Sleep(loadPhase)
	converge(t, "device killed", dev, r.cloud(), up, down)
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
