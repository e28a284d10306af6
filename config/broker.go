package config

import (
	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/broker"
)

// brokerSection decodes the broker key over the broker's defaults and
// validates it; its paths are resolved against the config's folder. The
// key present, even empty, asks for the broker.
func (l *loader) brokerSection(n *yaml.Node) *broker.Config {
	b := broker.NewDefaultConfig()
	l.decode(n, "broker", &b)
	b.Persistence = resolve(l.dir, b.Persistence)
	if t := b.TLS; t != nil {
		t.CertFile, t.KeyFile, t.ClientCAFile = resolve(l.dir, t.CertFile), resolve(l.dir, t.KeyFile), resolve(l.dir, t.ClientCAFile)
	}
	l.faults("broker", b.Validate())
	return &b
}
