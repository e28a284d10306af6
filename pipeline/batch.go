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
	// Site is the sending site as the sender states it. Receivers trust
	// the site the transport vouches for (message metadata), not this.
	Site    string   `json:"site"`
	Changes []Change `json:"changes"`
	// Covers lists the outbox sequence numbers this batch settles: every
	// change's Seq plus those coalesced into a later change of the same
	// key. Sender-side only; not sent.
	Covers []uint64 `json:"-"`
	// Rejected collects the changes a stage refused, with reasons.
	Rejected []Reject `json:"-"`
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
