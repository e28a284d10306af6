package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// Credentials the broker users and the transports share.
const (
	cloudUser     = "worker"
	cloudPassword = "cloud-secret"
)

func devicePassword(site string) string { return "pw-" + site }

// mqttTransport is an mqtt transport entry with quick reconnects.
func mqttTransport(broker, clientID, user, password string) string {
	return fmt.Sprintf(`    type: mqtt
    url: mqtt://%s
    client_id: %q
    username: %q
    password: %q
    connect_timeout: 3s
    reconnect_max: 1s
`, broker, clientID, user, password)
}

// deviceConfig is a device: its store, an mqtt transport, the up and
// apply pipelines.
func deviceConfig(t *testing.T, site, broker string) string {
	return fmt.Sprintf(`site: %s
schema: %s
storage:
  local: {type: badger, path: ./device, durability: sync}
transports:
  mqtt:
%spipelines:
  up:
    from: storage/local
    stages: [policy, {batch: {delay: 20ms, count: 500}}]
    to: transport/mqtt
    ack_timeout: 3s
  apply:
    from: transport/mqtt
    stages: [policy]
    to: storage/local
api:
  listen: 127.0.0.1:0
`, site, schemaPath(t), mqttTransport(broker, site, site, devicePassword(site)))
}

// brokerSection is an embedded broker with a user per device and the
// cloud user.
func brokerSection(addr string, devices []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "broker:\n  listen: %s\n  anonymous: false\n  persistence: ./broker\n  users:\n", addr)
	for _, d := range devices {
		fmt.Fprintf(&b, "    - {username: %q, password: %q, site: %q}\n", d, devicePassword(d), d)
	}
	fmt.Fprintf(&b, "    - {username: %q, password: %q, role: cloud}\n", cloudUser, cloudPassword)
	return b.String()
}

// cloudConfig is a cloud worker: the cloud store (writing as site
// cloud-N, so two workers' versions never tie), an mqtt transport (client
// id worker-N) and the ingest and down pipelines; with embeddedAt set it
// also runs the broker there.
func cloudConfig(t *testing.T, worker int, broker, embeddedAt string, devices []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "site: cloud\nschema: %s\n", schemaPath(t))
	if embeddedAt != "" {
		b.WriteString(brokerSection(embeddedAt, devices))
	}
	fmt.Fprintf(&b, `storage:
  cloud: {type: badger, path: ./cloud, durability: sync, side: cloud, site: cloud-%d}
`, worker)
	b.WriteString(workerPipelines(broker, worker))
	return b.String()
}

// brokerOnlyConfig is a process that only runs the embedded broker (a
// process needs a store: it has an idle one).
func brokerOnlyConfig(t *testing.T, addr string, devices []string) string {
	return fmt.Sprintf("site: broker\nschema: %s\n%sstorage:\n  local: {type: badger, path: ./idle}\napi:\n  listen: 127.0.0.1:0\n",
		schemaPath(t), brokerSection(addr, devices))
}

// workerPipelines is the rest of a cloud worker's config after its
// storage: its mqtt transport on broker, the ingest and down pipelines
// over storage/cloud, and an API on a free port.
func workerPipelines(broker string, worker int) string {
	return fmt.Sprintf(`transports:
  mqtt:
%spipelines:
  ingest:
    from: transport/mqtt
    stages: [policy]
    to: storage/cloud
  down:
    from: storage/cloud
    stages: [policy, {batch: {delay: 20ms, count: 500}}]
    to: transport/mqtt
    ack_timeout: 3s
api:
  listen: 127.0.0.1:0
`, mqttTransport(broker, fmt.Sprintf("worker-%d", worker), cloudUser, cloudPassword))
}
