package config

import (
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/broker"
	"github.com/iotod/iotod/pipeline"
)

// brokerSection decodes the broker key over the broker's defaults and
// validates it; its paths are resolved against the config's folder, and a
// max_packet it leaves out is sized after the file's mqtt transports
// (brokerMaxPacket). The key present, even empty, asks for the broker.
func (l *loader) brokerSection(n *yaml.Node, transports map[string]*TransportConfig) *broker.Config {
	b := broker.NewDefaultConfig()
	l.decode(n, "broker", &b)
	b.Persistence = resolve(l.dir, b.Persistence)
	if t := b.TLS; t != nil {
		t.CertFile, t.KeyFile, t.ClientCAFile = resolve(l.dir, t.CertFile), resolve(l.dir, t.KeyFile), resolve(l.dir, t.ClientCAFile)
	}
	if n.Kind != yaml.MappingNode || mappingValue(n, "max_packet") == nil {
		b.MaxPacket = brokerMaxPacket(mqttPayloads(transports))
	}
	l.faults("broker", b.Validate())
	return &b
}

// brokerClient is the config of a transport whose messages go through an
// MQTT broker (the mqtt transport's): the embedded broker must take its
// largest packets.
type brokerClient interface {
	MQTTMaxPayload() pipeline.ByteSize
}

// brokerMaxPacket is the broker's max_packet for transports publishing at
// most payloads: the largest plus broker.PacketAllowance (for the topic
// and properties), at most broker.MaxPacketLimit;
// broker.DefaultMaxPacket when there are none.
func brokerMaxPacket(payloads []pipeline.ByteSize) pipeline.ByteSize {
	if len(payloads) == 0 {
		return broker.DefaultMaxPacket
	}
	return min(slices.Max(payloads)+broker.PacketAllowance, broker.MaxPacketLimit)
}

// mqttPayloads lists the max_payload of the transports whose messages
// go through an MQTT broker.
func mqttPayloads(transports map[string]*TransportConfig) []pipeline.ByteSize {
	var out []pipeline.ByteSize
	for _, t := range transports {
		if c, ok := t.Config.(brokerClient); ok {
			out = append(out, c.MQTTMaxPayload())
		}
	}
	return out
}
