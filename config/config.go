// Package config loads and checks pipelines.yaml, the file that says how an
// iotod process runs: its site, schema, storage, transports, pipelines and
// local API. Plugin keys are decoded into each plugin's own typed config,
// found in a pipeline.Registry, so a loaded Config is ready to run.
package config

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/iotod/iotod/broker"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// Config is a checked pipelines.yaml (or several files merged). Load
// returns it with defaults applied, every plugin config decoded and
// validated, and the schema path resolved.
type Config struct {
	// Site is this process's site id: it names the origin of versions and
	// the replication topics.
	Site string
	// Schema is the absolute path of the OneTable schema file.
	Schema string
	// Storage maps a storage name to its entry.
	Storage map[string]*StorageConfig
	// Transports maps a transport name to its entry.
	Transports map[string]*TransportConfig
	// Pipelines maps a pipeline name to its checked wiring.
	Pipelines map[string]*PipelineConfig
	// API is the local HTTP/JSON API.
	API APIConfig
	// DeadLetters caps the dead-letter file.
	DeadLetters DeadLettersConfig
	// MaxClockSkew is how far ahead of this process's clock a device's
	// version may be before the cloud refuses the change (default
	// pipeline.DefaultMaxClockSkew, 5 minutes).
	MaxClockSkew time.Duration
	// MemoryLimit is the Go runtime's soft memory limit iotod run sets
	// (memory_limit; 0: none, or GOMEMLIMIT from the environment).
	MemoryLimit pipeline.ByteSize
	// Broker is the embedded MQTT broker iotod run starts, nil when the
	// file has no broker key.
	Broker *broker.Config
	// Log is the log iotod run writes.
	Log LogConfig

	// Files are the config files as given to Load, in merge order.
	Files []string
	// Dir is the absolute folder of the first file: relative paths in
	// every file (schema, api.socket, plugin paths) resolve against it.
	Dir string

	_ struct{}
}

// StorageConfig is one entry of `storage`: the framework's keys and the
// plugin's decoded, validated config.
type StorageConfig struct {
	Name string
	Type string
	// Side is where the storage serves: schema.SideDevice (default) or
	// schema.SideCloud. It sets the direction of the pipelines touching it.
	Side schema.Side
	// Site is the site the storage writes as; default the top-level site.
	Site string
	// ReadCache is the size of the database's cache of reads (read_cache):
	// 0 the default (4 MB on a device, none on the cloud), negative none.
	ReadCache int64
	Factory   pipeline.Factory
	Config    pipeline.Config

	_ struct{}
}

// ID returns the storage's component id, type/name.
func (s *StorageConfig) ID() pipeline.ID { return pipeline.ID{Type: s.Type, Name: s.Name} }

// TransportConfig is one entry of `transports`.
type TransportConfig struct {
	Name    string
	Type    string
	Factory pipeline.Factory
	Config  pipeline.Config

	_ struct{}
}

// ID returns the transport's component id, type/name.
func (t *TransportConfig) ID() pipeline.ID { return pipeline.ID{Type: t.Type, Name: t.Name} }

// PipelineConfig is one checked pipeline: from a storage to a transport,
// or from a transport to a storage.
type PipelineConfig struct {
	Name     string
	From, To Ref
	// Direction is up (device to cloud) or down: set in the file, or
	// derived from the side of the pipeline's storage.
	Direction pipeline.Direction
	// Side is where the pipeline runs: the side of its storage.
	Side schema.Side
	// AckTimeout is how long a sender waits for an ack before resending.
	AckTimeout time.Duration
	// MaxInFlight and MaxInFlightBytes bound what a sender has sent and
	// not had acknowledged, in changes and in payload bytes (0: the
	// runner's defaults, 20,000 changes and 8 MB).
	MaxInFlight      int
	MaxInFlightBytes pipeline.ByteSize
	// Owner is the item attribute naming the device an item belongs to
	// (default deviceId): a cloud pipeline sends a change only to that
	// device, and refuses a device's change to another device's item.
	Owner    string
	Stages   []ComponentConfig
	Triggers []ComponentConfig
	// TriggerDelivery says how the pipeline's triggers are called.
	TriggerDelivery pipeline.TriggerDelivery

	_ struct{}
}

// Storage returns the name of the pipeline's storage end.
func (p *PipelineConfig) Storage() string {
	if p.From.Kind == pipeline.KindStorage {
		return p.From.Name
	}
	return p.To.Name
}

// Transport returns the name of the pipeline's transport end.
func (p *PipelineConfig) Transport() string {
	if p.From.Kind == pipeline.KindTransport {
		return p.From.Name
	}
	return p.To.Name
}

// Sends reports whether the pipeline reads a storage's outbox and sends
// on a transport (else it receives and applies into a storage).
func (p *PipelineConfig) Sends() bool { return p.From.Kind == pipeline.KindStorage }

// ComponentConfig is one stage or trigger of a pipeline.
type ComponentConfig struct {
	ID      pipeline.ID
	Factory pipeline.Factory
	Config  pipeline.Config
	// Where is the entry's file:line, Path its key path
	// (pipelines.up.stages[1]), for errors found after loading.
	Where, Path string

	_ struct{}
}

// Ref names a storage or a transport: "storage/local", "transport/bus".
type Ref struct {
	Kind pipeline.Kind
	Name string
}

func (r Ref) String() string { return fmt.Sprintf("%s/%s", r.Kind, r.Name) }

// APIConfig says where the local HTTP/JSON API listens. It has no
// authentication, so it listens only on loopback or on a unix socket.
type APIConfig struct {
	// Listen is a loopback host:port; default 127.0.0.1:7400. An empty
	// string turns TCP off (then Socket is required).
	Listen string `yaml:"listen" desc:"loopback host:port of the local API; empty turns TCP off"`
	// Socket is an optional unix socket path, relative to the config
	// folder; the socket is made readable and writable by its owner only.
	Socket string `yaml:"socket" desc:"optional unix socket for the same API, mode 0600"`
	// UI serves the status page at / on the same addresses (default
	// true; docs/operations.md, "The status page").
	UI bool `yaml:"ui" desc:"serve the status page (pipelines, dead letters, the fleet) at / of the API"`

	_ struct{}
}

// DeadLettersConfig caps data/deadletters.jsonl, where refused changes and
// unreadable messages are kept: when the next letter would take the file
// over max_size it is rotated to deadletters.1.jsonl (and so on), keeping
// the keep most recent rotated files.
type DeadLettersConfig struct {
	MaxSize pipeline.ByteSize `yaml:"max_size" desc:"size at which the dead-letter file is rotated (64KB to 1GB; default 10MB)"`
	Keep    int               `yaml:"keep" desc:"rotated dead-letter files kept (0 to 100; default 2; 0: the file starts over when full)"`

	_ struct{}
}

// Defaults of DeadLettersConfig.
const (
	DefaultDeadLetterMax  = 10 * pipeline.Megabyte
	DefaultDeadLetterKeep = 2
)

// DefaultListen is the API's default address.
const DefaultListen = "127.0.0.1:7400"

// DefaultAckTimeout is the default of a pipeline's ack_timeout.
const DefaultAckTimeout = 10 * time.Second

// newDefaultConfig returns a Config holding every default.
func newDefaultConfig() *Config {
	return &Config{
		API:          APIConfig{Listen: DefaultListen, UI: true},
		MaxClockSkew: pipeline.DefaultMaxClockSkew,
		DeadLetters:  DeadLettersConfig{MaxSize: DefaultDeadLetterMax, Keep: DefaultDeadLetterKeep},
		Log:          LogConfig{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Storage:      map[string]*StorageConfig{},
		Transports:   map[string]*TransportConfig{},
		Pipelines:    map[string]*PipelineConfig{},
	}
}

// LocalStorage returns the storage the device database (and its API)
// uses: the one named "local", or the only device-side one. ok is false
// when there is none such.
func (c *Config) LocalStorage() (name string, s *StorageConfig, ok bool) {
	if s, ok := c.Storage["local"]; ok {
		return "local", s, true
	}
	for n, st := range c.Storage {
		if st.Side != schema.SideDevice {
			continue
		}
		if ok {
			return "", nil, false
		}
		name, s, ok = n, st, true
	}
	return name, s, ok
}

// resolve makes path relative to dir, unless it is absolute or empty.
func resolve(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// isLoopback reports whether host names the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
