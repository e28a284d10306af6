package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/broker"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/plugins/transport/mqtt"
)

// TestBrokerMaxPacket: a broker key without max_packet takes the largest
// max_payload of the file's mqtt transports (their default when they set
// none) plus broker.PacketAllowance, or broker.DefaultMaxPacket without
// any; a max_packet written in the file wins. Merged files count as one.
func TestBrokerMaxPacket(t *testing.T) {
	testenv.NeedBadger(t) // the configs name badger storages, which 32-bit builds refuse
	const kb, mb = pipeline.Kilobyte, pipeline.Megabyte
	reg, err := pipeline.NewRegistry(badger.NewFactory(), mqtt.NewFactory(),
		fakeFactory{pipeline.KindTransport, "bus", func() pipeline.Config { return &busConfig{Buffer: 16, QoS: 1} }})
	require.NoError(t, err)
	head := "site: cloud\nschema: " + abs(t, "testdata/good/schema.json5") + "\nstorage:\n  local: {type: badger, path: ./data}\n"
	tests := []struct {
		name  string
		files []string // merged in order, each after head
		env   map[string]string
		want  pipeline.ByteSize
	}{
		{"no transports", []string{"broker: {}"}, nil, broker.DefaultMaxPacket},
		{"an mqtt transport with its default max_payload", []string{"broker: {}\ntransports:\n  b: {type: mqtt}"}, nil,
			mqtt.DefaultMaxPayload + broker.PacketAllowance},
		{"the largest of several", []string{"broker: {}\ntransports:\n  a: {type: mqtt, max_payload: 256KB}\n  b: {type: mqtt, max_payload: 1MB}\n  c: {type: mqtt}"}, nil,
			mb + broker.PacketAllowance},
		{"a small max_payload", []string{"broker: {}\ntransports:\n  b: {type: mqtt, max_payload: 10KB}"}, nil, 26 * kb},
		{"a transport of another type", []string{"broker: {}\ntransports:\n  b: {type: bus, buffer: 1}"}, nil, broker.DefaultMaxPacket},
		{"max_packet written", []string{"broker: {max_packet: 64KB}\ntransports:\n  b: {type: mqtt, max_payload: 1MB}"}, nil, 64 * kb},
		{"from a variable", []string{"broker: {}\ntransports:\n  b: {type: mqtt, max_payload: \"${MAXP}\"}"}, map[string]string{"MAXP": "512KB"},
			512*kb + broker.PacketAllowance},
		{"at most MQTT's largest packet", []string{"broker: {}\ntransports:\n  b: {type: mqtt, max_payload: 256MB}"}, nil, broker.MaxPacketLimit},
		{"the broker in a later file", []string{"transports:\n  b: {type: mqtt, max_payload: 512KB}", "broker: {}"}, nil,
			512*kb + broker.PacketAllowance},
		{"max_payload raised by a later file", []string{"broker: {}\ntransports:\n  b: {type: mqtt, max_payload: 512KB}", "transports:\n  b: {max_payload: 2MB}"}, nil,
			2*mb + broker.PacketAllowance},
		{"max_packet in a later file", []string{"broker: {}\ntransports:\n  b: {type: mqtt}", "broker: {max_packet: 1MB}"}, nil, mb},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var files []string
			for i, body := range tc.files {
				path := filepath.Join(dir, "f"+string(rune('0'+i))+".yaml")
				if i == 0 {
					body = head + body
				}
				require.NoError(t, os.WriteFile(path, []byte(body+"\n"), 0o600))
				files = append(files, path)
			}
			c, err := LoadWith(reg, envOf(tc.env), files...)
			require.NoError(t, err, "%s", strings.Join(tc.files, "\n---\n"))
			require.NotNil(t, c.Broker)
			assert.Equal(t, tc.want, c.Broker.MaxPacket)
		})
	}
}
