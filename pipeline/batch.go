package pipeline

import (
	"fmt"
)

// ProtocolVersion is the version of the replication payloads.
const ProtocolVersion = 1

// Direction is which way a pipeline moves changes.
type Direction string

// Directions.
const (
	Up   Direction = "up"   // device to cloud
	Down Direction = "down" // cloud to device
)

// Batch is an ordered list of changes that crosses a transport as one
// message, with the site that sent it.
type Batch struct {
	V  int    `json:"v"`
	ID string `json:"id"`
	// Kind is KindChanges (or empty) for a batch of changes, or KindSynced
	// for the marker that ends a catch-up.
	Kind string `json:"kind,omitempty"`
	// Site is the sending site as the sender states it. Receivers trust
	// the site the transport vouches for (message metadata), not this.
	Site    string   `json:"site"`
	Changes []Change `json:"changes"`
	// Before and After are down-batch cursors: the highest version the
	// cloud had sent this device before this batch, and the highest after
	// it. A device whose cursor is below Before missed something and asks
	// for a catch-up. Empty when unknown (e.g. after a cloud restart).
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// CatchUp marks batches that answer a sync request.
	CatchUp bool `json:"catchup,omitempty"`
	// Request is the sync request a catch-up batch answers; Count, on the
	// KindSynced marker, is how many changes the catch-up sent, so the
	// device can tell it got them all.
	Request string `json:"request,omitempty"`
	Count   int    `json:"count,omitempty"`
	// Covers lists the outbox sequence numbers this batch settles: every
	// change's Seq plus those coalesced into a later change of the same
	// key. Sender-side only; not sent.
	Covers []uint64 `json:"-"`
	// Rejected collects the changes a stage refused, with reasons.
	Rejected []Reject `json:"-"`
}

// Batch kinds.
const (
	KindChanges = "changes"
	KindSynced  = "synced"
)

// SyncRequest asks the cloud for every change for this device with a
// version above Cursor (empty: everything). The cloud answers on the down
// channel with catch-up batches, then a KindSynced batch whose After is
// the new cursor. Full asks for a full resync of the device's models.
type SyncRequest struct {
	V      int    `json:"v"`
	ID     string `json:"id"`
	Cursor string `json:"cursor,omitempty"`
	Full   bool   `json:"full,omitempty"`
}

// Reject is a change a stage or the far side refused, and why.
type Reject struct {
	Model  string `json:"model"`
	Key    Key    `json:"key"`
	Seq    uint64 `json:"seq,omitempty"`
	Reason string `json:"reason"`
}

// Ack answers a batch once the far side has applied it: every change is
// either applied (idempotently: a stale version counts as applied) or
// rejected with a reason. Both settle the changes for good.
type Ack struct {
	V        int      `json:"v"`
	Batch    string   `json:"batch"`
	Applied  int      `json:"applied"`
	Rejected []Reject `json:"rejected,omitempty"`
}

// Validate checks a batch received from outside.
func (b *Batch) Validate() error {
	if b.V != ProtocolVersion {
		return Permanent(fmt.Errorf("%w: batch: unknown protocol version %d (want %d)", ErrInvalid, b.V, ProtocolVersion))
	}
	if b.ID == "" {
		return Permanent(fmt.Errorf("%w: batch: missing id", ErrInvalid))
	}
	if b.Kind != "" && b.Kind != KindChanges && b.Kind != KindSynced {
		return Permanent(fmt.Errorf("%w: batch %s: unknown kind %q", ErrInvalid, b.ID, b.Kind))
	}
	for _, c := range []struct{ name, v string }{{"before", b.Before}, {"after", b.After}} {
		if c.v != "" {
			if _, err := ParseVersion(c.v); err != nil {
				return Permanent(fmt.Errorf("%w: batch %s: %s: %v", ErrInvalid, b.ID, c.name, err))
			}
		}
	}
	for i, c := range b.Changes {
		if !c.Op.Valid() {
			return Permanent(fmt.Errorf("%w: batch %s: changes[%d]: unknown op %q", ErrInvalid, b.ID, i, c.Op))
		}
		if c.Model == "" || c.Key.PK == "" {
			return Permanent(fmt.Errorf("%w: batch %s: changes[%d]: model and key.pk are required", ErrInvalid, b.ID, i))
		}
		if c.Op != OpRemove && len(c.Item) == 0 {
			return Permanent(fmt.Errorf("%w: batch %s: changes[%d]: %s without item", ErrInvalid, b.ID, i, c.Op))
		}
	}
	return nil
}
