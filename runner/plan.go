package runner

import (
	"fmt"
	"time"

	"github.com/iotod/iotod/broker"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// Plan is what a runner builds: the components and pipelines of a checked
// config, with each plugin's factory and typed config.
type Plan struct {
	Site   string
	Schema *schema.Schema
	// Dir is the config file's folder.
	Dir string
	// DeadLetters is the JSON-lines file dead letters are appended to ("":
	// memory only); it is rotated at DeadLetterMax bytes (0: the default),
	// keeping DeadLetterKeep old files (negative: the default).
	DeadLetters    string
	DeadLetterMax  int64
	DeadLetterKeep int
	Storage        map[string]StoragePlan
	Transports     map[string]ComponentPlan
	Pipelines      []PipelinePlan
	// Broker is the embedded MQTT broker, started before the transports
	// and closed after them (nil: none).
	Broker *broker.Config
	// MaxClockSkew bounds how far ahead of the clock a device's version
	// may be (0: pipeline.DefaultMaxClockSkew); see db.Options.
	MaxClockSkew time.Duration
}

// StoragePlan is one store: its plugin, and the side and site it serves.
type StoragePlan struct {
	ComponentPlan
	Side schema.Side
	Site string
	// ReadCache sizes the database's read cache (db.Options.ReadCacheBytes).
	ReadCache int64
}

// ComponentPlan is one plugin instance.
type ComponentPlan struct {
	ID      pipeline.ID
	Factory pipeline.Factory
	Config  pipeline.Config
}

// Ref names a storage or transport: kind and name.
type Ref struct {
	Kind pipeline.Kind
	Name string
}

func (r Ref) String() string { return fmt.Sprintf("%s/%s", r.Kind, r.Name) }

// PipelinePlan is one pipeline: storage to transport, or transport to
// storage.
type PipelinePlan struct {
	Name      string
	From, To  Ref
	Direction pipeline.Direction
	Stages    []ComponentPlan
	Triggers  []ComponentPlan
	// AckTimeout is how long a sender waits for an ack before resending
	// (zero: 10s).
	AckTimeout time.Duration
	// TriggerDelivery says how the triggers are called (zero: defaults).
	TriggerDelivery pipeline.TriggerDelivery
	MaxInFlight     int
	// MaxInFlightBytes bounds its payload bytes awaiting acks (0: 8 MB).
	MaxInFlightBytes int
	// Owner is the item attribute naming the device an item belongs to
	// (default DefaultOwner): the cloud sends a change only to that
	// device, and refuses a device's change to another device's item.
	Owner string
}

// DefaultOwner is the default owner attribute, as Ioto's schemas use it.
const DefaultOwner = "deviceId"
