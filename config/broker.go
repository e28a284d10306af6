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
func (l *loader) brokerSection(n *yaml.Node) *broker.Config {
	b := broker.NewDefaultConfig()
	l.decode(n, "broker", &b)
	b.Persistence = resolve(l.dir, b.Persistence)
	if t := b.TLS; t != nil {
		t.CertFile, t.KeyFile, t.ClientCAFile = resolve(l.dir, t.CertFile), resolve(l.dir, t.KeyFile), resolve(l.dir, t.ClientCAFile)
	}
	if n.Kind != yaml.MappingNode || mappingValue(n, "max_packet") == nil {
		b.MaxPacket = brokerMaxPacket(l.mqttPayloads(n))
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

// mqttPayloads lists the max_payload of the brokerClient transports of the
// file whose broker key is n, each decoded over its plugin's defaults.
// The broker key is decoded before the transports, so they are read here
// from the merged tree; faults are left to their own decoding.
func (l *loader) mqttPayloads(n *yaml.Node) []pipeline.ByteSize {
	transports := mappingValue(l.rootOf(n), "transports")
	if transports == nil || transports.Kind != yaml.MappingNode {
		return nil
	}
	var out []pipeline.ByteSize
	for i := 1; i < len(transports.Content); i += 2 {
		entry := transports.Content[i]
		typ := mappingValue(entry, "type")
		if typ == nil || typ.Kind != yaml.ScalarNode {
			continue
		}
		f, err := l.reg.Lookup(pipeline.KindTransport, typ.Value)
		if err != nil {
			continue
		}
		cfg := f.NewDefaultConfig()
		c, ok := cfg.(brokerClient)
		if !ok || entry.Decode(cfg) != nil {
			continue
		}
		out = append(out, c.MQTTMaxPayload())
	}
	return out
}

// rootOf returns the root of the merged tree, the mapping holding n as
// its broker key, or nil. A later file's own root may hold n too (when
// the first file has no broker key, merging adds the later file's):
// merging lays the later files over the first file's root, so the root
// from the earliest file is the merged one.
func (l *loader) rootOf(n *yaml.Node) *yaml.Node {
	var root *yaml.Node
	rootAt := len(l.files)
	for node, file := range l.origin {
		if node.Kind != yaml.MappingNode || mappingValue(node, "broker") != n {
			continue
		}
		if at := slices.Index(l.files, file); root == nil || at < rootAt {
			root, rootAt = node, at
		}
	}
	return root
}
