// Package pipeline holds the types every iotod component shares: changes,
// versions, the storage contract and the outbox, and the error taxonomy.
package pipeline

import (
	"encoding/json"
	"fmt"
)

// Op is the operation that produced a change.
type Op string

// The operations a change can carry.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpUpsert Op = "upsert"
	OpRemove Op = "remove"
)

// Valid reports whether o is one of the known operations.
func (o Op) Valid() bool {
	switch o {
	case OpCreate, OpUpdate, OpUpsert, OpRemove:
		return true
	}
	return false
}

// Key addresses one item by its primary key.
type Key struct {
	PK string `json:"pk"`
	SK string `json:"sk"`
}

func (k Key) String() string { return fmt.Sprintf("%q/%q", k.PK, k.SK) }

// Change is one committed write of one item, as the outbox keeps it and as
// replication carries it. Item is the whole snapshot after the write (nil for
// a remove).
type Change struct {
	// Seq is the outbox position, assigned by the store at commit. It orders
	// a site's changes and is never reused.
	Seq     uint64          `json:"seq"`
	Model   string          `json:"model"`
	Op      Op              `json:"op"`
	Key     Key             `json:"key"`
	Item    json.RawMessage `json:"item,omitempty"`
	Version Version         `json:"version"`
	// Origin is the site that made the change.
	Origin string `json:"origin"`
	// Time is the wall clock of the commit in Unix milliseconds; it gives the
	// outbox its age.
	Time int64 `json:"time"`
}
