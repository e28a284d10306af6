package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/plugins/storage/sqlite"
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
	return deviceWith(t, site, mqttTransport(broker, site, site, devicePassword(site)))
}

// pluginDeviceConfig is the same device with the example external
// transport (a client of the hub at addr) in place of mqtt.
func pluginDeviceConfig(t *testing.T, site, addr string) string {
	return deviceWith(t, site, pluginTransport(httpbusBin(t), fmt.Sprintf("{url: \"http://%s\", token: %q, connect_timeout: 3s}", addr, devicePassword(site))))
}

// pluginTransport is a transport entry of type plugin.
func pluginTransport(bin, config string) string {
	return fmt.Sprintf("    type: plugin\n    path: %s\n    restart_delay: 100ms\n    config: %s\n", bin, config)
}

// deviceWith is a device whose transport (named link whatever its type,
// so that the pipelines are the same) is the entry given.
func deviceWith(t *testing.T, site, transport string) string {
	return fmt.Sprintf(`site: %s
schema: %s
storage:
  local: %s
transports:
  link:
%spipelines:
  up:
    from: storage/local
    stages: [policy, {batch: {delay: 20ms, count: 500}}]
    to: transport/link
    ack_timeout: 3s
  apply:
    from: transport/link
    stages: [policy]
    to: storage/local
api:
  listen: 127.0.0.1:0
`, site, schemaPath(t), deviceStorage(site), transport)
}

// deviceStorage is a device's store entry: SQLite for a site whose name
// ends in "-sqlite", else the store testenv.StoreType names
// (IOTOD_TEST_STORE).
func deviceStorage(site string) string {
	if strings.HasSuffix(site, "-sqlite") || testenv.StoreType() == sqlite.TypeName {
		return "{type: sqlite, path: ./device.db, durability: sync}"
	}
	return "{type: badger, path: ./device, durability: sync}"
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

// pluginCloudConfig is cloudConfig with the example external transport
// in place of mqtt: worker 1's plugin runs the hub on addr, with a token
// per device and one for the cloud workers; the others are clients.
func pluginCloudConfig(t *testing.T, worker int, addr string, devices []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "site: cloud\nschema: %s\n", schemaPath(t))
	fmt.Fprintf(&b, `storage:
  cloud: {type: badger, path: ./cloud, durability: sync, side: cloud, site: cloud-%d}
`, worker)
	config := fmt.Sprintf("{url: \"http://%s\", token: %q, connect_timeout: 3s}", addr, cloudPassword)
	if worker == 1 {
		var clients strings.Builder
		for _, d := range devices {
			fmt.Fprintf(&clients, "{token: %q, site: %q}, ", devicePassword(d), d)
		}
		config = fmt.Sprintf("{listen: %q, clients: [%s{token: %q, site: \"*\"}]}", addr, clients.String(), cloudPassword)
	}
	b.WriteString(pipelinesOver(pluginTransport(httpbusBin(t), config)))
	return b.String()
}

// workerPipelines is the rest of a cloud worker's config after its
// storage: its mqtt transport on broker, the ingest and down pipelines
// over storage/cloud, and an API on a free port.
func workerPipelines(broker string, worker int) string {
	return pipelinesOver(mqttTransport(broker, fmt.Sprintf("worker-%d", worker), cloudUser, cloudPassword))
}

// pipelinesOver is a cloud worker's transports, pipelines and API after
// its storage, with the transport entry given (named link).
func pipelinesOver(transport string) string {
	return fmt.Sprintf(`transports:
  link:
%spipelines:
  ingest:
    from: transport/link
    stages: [policy]
    to: storage/cloud
  down:
    from: storage/cloud
    stages: [policy, {batch: {delay: 20ms, count: 500}}]
    to: transport/link
    ack_timeout: 3s
api:
  listen: 127.0.0.1:0
`, transport)
}
