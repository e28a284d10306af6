package e2e

import (
	"testing"
	"time"
)

// loadPhase is how long a write load runs before and after a kill.
const loadPhase = 1500 * time.Millisecond

// TestBrokerRestartUnderLoad kills the broker during a write load and
// starts it again on the same port: mosquitto (no persistence: it forgets
// every session), or, with the embedded broker, the cloud process that
// runs it (kill -9). After a sync every acknowledged write is in the
// cloud exactly once, at its latest version.
func TestBrokerRestartUnderLoad(t *testing.T) {
	forBrokers(t, func(t *testing.T, kind brokerKind) {
		r := newRig(t, kind, 1, "dev-1")
		l := startLoad(t, r.devices["dev-1"], "dev-1", 4)
		time.Sleep(loadPhase)
		if kind == viaMosquitto {
			r.mosq.kill()
			time.Sleep(500 * time.Millisecond)
			r.mosq.start()
		} else {
			r.cloud().kill()
			time.Sleep(500 * time.Millisecond)
			r.cloud().start()
		}
		time.Sleep(loadPhase)
		l.converge(t, "broker restart", r.cloud().client(), 2*time.Minute)
		if n := r.devices["dev-1"].metric("iotod_mqtt_connections_total"); n < 2 {
			t.Errorf("the device connected %v times: the broker restart did not cut it off", n)
		}
	})
}

// TestDeviceKilledUnderLoad kills the device process (SIGKILL) during a
// write load and starts it again; the load goes on against the new
// process.
func TestDeviceKilledUnderLoad(t *testing.T) {
	r := newRig(t, inCloud, 1, "dev-1")
	dev := r.devices["dev-1"]
	l := startLoad(t, dev, "dev-1", 4)
	time.Sleep(loadPhase)
	dev.kill()
	dev.start()
	time.Sleep(loadPhase)
	l.converge(t, "device killed", r.cloud().client(), 2*time.Minute)
}

// TestCloudWorkerKilledUnderLoad kills a cloud worker (SIGKILL) during a
// write load while the broker stays up (mosquitto, or the embedded broker
// in a process of its own), and starts it again.
func TestCloudWorkerKilledUnderLoad(t *testing.T) {
	kind := ownProcess
	if _, ok := haveMosquitto(); ok {
		kind = viaMosquitto
	}
	r := newRig(t, kind, 1, "dev-1")
	l := startLoad(t, r.devices["dev-1"], "dev-1", 4)
	time.Sleep(loadPhase)
	r.cloud().kill()
	time.Sleep(500 * time.Millisecond)
	r.cloud().start()
	time.Sleep(loadPhase)
	l.converge(t, "worker killed ("+kind.String()+")", r.cloud().client(), 2*time.Minute)
}
