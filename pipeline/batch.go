package pipeline

import (
	"fmt"

	json "github.com/goccy/go-json"
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

// Validate checks the header of a batch received from outside, before
// anything is built from it: protocol version, an id fit for acks and
// message ids, a known kind, a request id, cursors that parse. Errors are
// permanent and repeat no more than a short prefix of the input. Each
// change is checked on its own at apply (Change.Validate, then the
// schema), so one bad change is refused alone and the others still apply.
func (b *Batch) Validate() error {
	if b.V != ProtocolVersion {
		return Permanent(fmt.Errorf("%w: batch: unknown protocol version %d (want %d)", ErrInvalid, b.V, ProtocolVersion))
	}
	if err := ValidID(b.ID); err != nil {
		return Permanent(fmt.Errorf("%w: batch id: %v", ErrInvalid, err))
	}
	if b.Kind != "" && b.Kind != KindChanges && b.Kind != KindSynced {
		return Permanent(fmt.Errorf("%w: batch %s: unknown kind %s", ErrInvalid, b.ID, Quote(b.Kind)))
	}
	if b.Request != "" {
		if err := ValidID(b.Request); err != nil {
			return Permanent(fmt.Errorf("%w: batch %s: request: %v", ErrInvalid, b.ID, err))
		}
	}
	for _, c := range []struct{ name, v string }{{"before", b.Before}, {"after", b.After}} {
		if c.v != "" {
			if _, err := ParseVersion(c.v); err != nil {
				return Permanent(fmt.Errorf("%w: batch %s: %s: %v", ErrInvalid, b.ID, c.name, err))
			}
		}
	}
	return nil
}

// Validate checks the envelope of one change: op, model name, key, origin
// and version. It does not look at the item (the store's apply checks it
// against the schema).
func (c *Change) Validate() error {
	switch {
	case !c.Op.Valid():
		return fmt.Errorf("%w: unknown op %s", ErrInvalid, Quote(string(c.Op)))
	case c.Model == "":
		return fmt.Errorf("%w: model is required", ErrInvalid)
	case c.Key.PK == "":
		return fmt.Errorf("%w: key.pk is required", ErrInvalid)
	case c.Op != OpRemove && len(c.Item) == 0:
		return fmt.Errorf("%w: %s without item", ErrInvalid, c.Op)
	}
	if err := ValidText(c.Model, MaxModelLen); err != nil {
		return fmt.Errorf("%w: model: %v", ErrInvalid, err)
	}
	if err := ValidText(c.Key.PK, MaxPKLen); err != nil {
		return fmt.Errorf("%w: key.pk: %v", ErrInvalid, err)
	}
	if err := ValidText(c.Key.SK, MaxSKLen); err != nil {
		return fmt.Errorf("%w: key.sk: %v", ErrInvalid, err)
	}
	if err := ValidSite(c.Origin); err != nil {
		return fmt.Errorf("%w: origin: %v", ErrInvalid, err)
	}
	if err := c.Version.Validate(); err != nil {
		return err
	}
	if c.Version.Origin != c.Origin {
		return fmt.Errorf("%w: version origin %s is not the change's origin %s", ErrInvalid, Quote(c.Version.Origin), Quote(c.Origin))
	}
	return nil
}

// DecodeBatch reads a batch payload of at most max bytes (0: no limit):
// the size and the nesting depth are checked before the JSON is parsed,
// then the envelope (Batch.Validate). On an error the batch returned is
// whatever could be read, so a caller can still ack a batch whose id is
// valid; it is nil when the payload is not a batch at all.
func DecodeBatch(payload []byte, max int) (*Batch, error) {
	if max > 0 && len(payload) > max {
		err := Permanent(fmt.Errorf("%w: batch of %d bytes, over the %d byte maximum payload (senders split larger batches)", ErrTooLarge, len(payload), max))
		// Read the header alone (the changes are skipped, not decoded), so
		// the sender can be told.
		var head struct {
			V  int    `json:"v"`
			ID string `json:"id"`
		}
		if CheckJSONDepth(payload, MaxJSONDepth) != nil || json.Unmarshal(payload, &head) != nil {
			return nil, err
		}
		return &Batch{V: head.V, ID: head.ID}, err
	}
	if err := CheckJSONDepth(payload, MaxJSONDepth); err != nil {
		return nil, Permanent(fmt.Errorf("batch: %w", err))
	}
	var b Batch
	if err := json.Unmarshal(payload, &b); err != nil {
		return nil, Permanent(fmt.Errorf("%w: batch is not valid JSON: %s", ErrInvalid, Truncate(err.Error(), 120)))
	}
	if err := b.Validate(); err != nil {
		return &b, err
	}
	return &b, nil
}

// DecodeSyncRequest reads a sync request: small, with a valid id and
// cursor.
func DecodeSyncRequest(payload []byte) (*SyncRequest, error) {
	const max = 1024
	if len(payload) > max {
		return nil, Permanent(fmt.Errorf("%w: sync request of %d bytes, over %d", ErrTooLarge, len(payload), max))
	}
	var r SyncRequest
	if err := json.Unmarshal(payload, &r); err != nil {
		return nil, Permanent(fmt.Errorf("%w: sync request is not valid JSON: %s", ErrInvalid, Truncate(err.Error(), 120)))
	}
	if r.V != ProtocolVersion {
		return nil, Permanent(fmt.Errorf("%w: sync request: unknown protocol version %d", ErrInvalid, r.V))
	}
	if err := ValidID(r.ID); err != nil {
		return nil, Permanent(fmt.Errorf("%w: sync request id: %v", ErrInvalid, err))
	}
	if r.Cursor != "" {
		if _, err := ParseVersion(r.Cursor); err != nil {
			return nil, Permanent(fmt.Errorf("%w: sync request %s: cursor: %v", ErrInvalid, r.ID, err))
		}
	}
	return &r, nil
}

// DecodeAck reads an ack of at most max bytes (0: no limit).
func DecodeAck(payload []byte, max int) (*Ack, error) {
	if max > 0 && len(payload) > max {
		return nil, Permanent(fmt.Errorf("%w: ack of %d bytes, over %d", ErrTooLarge, len(payload), max))
	}
	if err := CheckJSONDepth(payload, MaxJSONDepth); err != nil {
		return nil, Permanent(fmt.Errorf("ack: %w", err))
	}
	var a Ack
	if err := json.Unmarshal(payload, &a); err != nil {
		return nil, Permanent(fmt.Errorf("%w: ack is not valid JSON: %s", ErrInvalid, Truncate(err.Error(), 120)))
	}
	if a.V != ProtocolVersion {
		return nil, Permanent(fmt.Errorf("%w: ack: unknown protocol version %d", ErrInvalid, a.V))
	}
	if err := ValidID(a.Batch); err != nil {
		return nil, Permanent(fmt.Errorf("%w: ack batch id: %v", ErrInvalid, err))
	}
	if a.Applied < 0 {
		return nil, Permanent(fmt.Errorf("%w: ack %s: negative applied count", ErrInvalid, a.Batch))
	}
	for i := range a.Rejected {
		a.Rejected[i].Reason = Truncate(a.Rejected[i].Reason, MaxReasonLen)
	}
	return &a, nil
}
