package e2e

import (
	"fmt"
	"testing"
)

// brokerKind says where a rig's MQTT broker runs.
type brokerKind int

const (
	// inCloud: the embedded broker in the first cloud worker's process.
	inCloud brokerKind = iota
	// ownProcess: the embedded broker in a process of its own.
	ownProcess
	// viaMosquitto: a mosquitto of the test's own; no iotod runs a broker.
	viaMosquitto
	// viaPlugin: no MQTT at all: the example external transport
	// (examples/plugins/httpbus), whose hub runs in the first cloud
	// worker's plugin process; the rest is the same YAML.
	viaPlugin
)

func (k brokerKind) String() string {
	return [...]string{"embedded", "embedded-process", "mosquitto", "plugin-transport"}[k]
}

// rig is a broker, cloud workers and devices, each a process.
type rig struct {
	t       *testing.T
	kind    brokerKind
	addr    string // the broker's host:port
	mosq    *mosquitto
	broker  *node // ownProcess
	workers []*node
	devices map[string]*node
}

// newRig starts the broker, the cloud workers, then a device per site.
func newRig(t *testing.T, kind brokerKind, workers int, sites ...string) *rig {
	t.Helper()
	r := newCloud(t, kind, workers, sites...)
	for _, s := range sites {
		r.addDevice(s)
	}
	return r
}

// newCloud starts the broker, with a user for each of sites, and the
// cloud workers; no device.
func newCloud(t *testing.T, kind brokerKind, workers int, sites ...string) *rig {
	t.Helper()
	iotodBin(t) // skips under -short before anything starts
	r := &rig{t: t, kind: kind, devices: map[string]*node{}}
	switch kind {
	case viaMosquitto:
		r.mosq = startMosquitto(t)
		r.addr = r.mosq.addr
	case ownProcess:
		r.addr = freeAddr(t)
		r.broker = startNode(t, "broker", brokerOnlyConfig(t, r.addr, sites))
	case viaPlugin:
		r.addr = freeAddr(t)
		for w := 1; w <= workers; w++ {
			r.workers = append(r.workers, startNode(t, fmt.Sprintf("worker-%d", w), pluginCloudConfig(t, w, r.addr, sites)))
		}
		return r
	default:
		r.addr = freeAddr(t)
	}
	for w := 1; w <= workers; w++ {
		embedded := ""
		if kind == inCloud && w == 1 {
			embedded = r.addr
		}
		r.workers = append(r.workers, startNode(t, fmt.Sprintf("worker-%d", w), cloudConfig(t, w, r.addr, embedded, sites)))
	}
	return r
}

// deviceConfig is a device of the rig's kind reaching the broker (or
// the plugin transport's hub) at addr.
func (r *rig) deviceConfig(site, addr string) string {
	if r.kind == viaPlugin {
		return pluginDeviceConfig(r.t, site, addr)
	}
	return deviceConfig(r.t, site, addr)
}

// addDevice starts a device process for site (a user of the broker).
func (r *rig) addDevice(site string) *node {
	r.t.Helper()
	n := startNode(r.t, site, r.deviceConfig(site, r.addr))
	r.devices[site] = n
	return n
}

// cloud is the first cloud worker.
func (r *rig) cloud() *node { return r.workers[0] }

// forBrokers runs f on the embedded broker and, when the tests have
// mosquitto, on mosquitto.
func forBrokers(t *testing.T, f func(t *testing.T, kind brokerKind)) {
	for _, k := range []brokerKind{inCloud, viaMosquitto} {
		t.Run(k.String(), func(t *testing.T) { f(t, k) })
	}
}

// forTransports runs f as forBrokers does, and once more with the MQTT
// transport replaced, in the YAML alone, by the example external
// transport.
func forTransports(t *testing.T, f func(t *testing.T, kind brokerKind)) {
	for _, k := range []brokerKind{inCloud, viaMosquitto, viaPlugin} {
		t.Run(k.String(), func(t *testing.T) { f(t, k) })
	}
}

// addDeviceVia starts a device process for site that reaches the broker
// at addr (a proxy).
func (r *rig) addDeviceVia(site, addr string) *node {
	r.t.Helper()
	n := startNode(r.t, site, r.deviceConfig(site, addr))
	r.devices[site] = n
	return n
}
