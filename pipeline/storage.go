package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// PrimaryIndex is the name of the index every schema must declare.
const PrimaryIndex = "primary"

// IndexEntry is an item's place in one secondary index.
type IndexEntry struct {
	Index string `json:"index"`
	Hash  string `json:"hash"`
	Sort  string `json:"sort"`
}

// Record is one stored item with everything a storage engine needs to place
// it: its primary key, its entries in secondary indexes, its model, version
// and expiry. Item is the JSON document exactly as stored.
type Record struct {
	Key     Key          `json:"key"`
	Model   string       `json:"model"`
	Item    []byte       `json:"item"`
	Indexes []IndexEntry `json:"indexes,omitempty"`
	Version Version      `json:"version"`
	// Expires is the item's TTL in Unix milliseconds; zero means never.
	Expires int64 `json:"expires,omitempty"`
}

// SortOp is a sort-key condition of a query.
type SortOp string

// The sort-key conditions, as OneTable names them.
const (
	SortAll     SortOp = ""
	SortBegins  SortOp = "begins"
	SortBetween SortOp = "between"
	SortLT      SortOp = "<"
	SortLE      SortOp = "<="
	SortEQ      SortOp = "="
	SortGE      SortOp = ">="
	SortGT      SortOp = ">"
)

// SortCond restricts the sort key of a query. Between takes two values, the
// others one, SortAll none.
type SortCond struct {
	Op     SortOp
	Values []string
}

// Validate checks that c is a known condition with as many values as it
// takes (none for SortAll, two for SortBetween, one for the others).
func (c SortCond) Validate() error {
	want := 1
	switch c.Op {
	case SortAll:
		want = 0
	case SortBetween:
		want = 2
	case SortBegins, SortEQ, SortGE, SortGT, SortLT, SortLE:
	default:
		return fmt.Errorf("%w: unknown sort condition %q", ErrInvalid, c.Op)
	}
	if len(c.Values) != want {
		return fmt.Errorf("%w: sort condition %q takes %d values, got %d", ErrInvalid, c.Op, want, len(c.Values))
	}
	return nil
}

// Matches reports whether sort key s, compared as a string (byte order,
// as an embedded store orders its keys), meets c.
func (c SortCond) Matches(s string) bool {
	switch c.Op {
	case SortBegins:
		return strings.HasPrefix(s, c.Values[0])
	case SortEQ:
		return s == c.Values[0]
	case SortGE:
		return s >= c.Values[0]
	case SortGT:
		return s > c.Values[0]
	case SortLT:
		return s < c.Values[0]
	case SortLE:
		return s <= c.Values[0]
	case SortBetween:
		return s >= c.Values[0] && s <= c.Values[1]
	default:
		return true
	}
}

// Position is where a query stopped: the index entry and primary key of the
// last record it returned. A query resumes strictly after it.
type Position struct {
	Hash string `json:"h"`
	Sort string `json:"s"`
	Key  Key    `json:"k"`
}

// Query selects records of one index in key order.
type Query struct {
	// Index is PrimaryIndex (or "") or a secondary index name.
	Index string
	// Hash is the hash key value. When HashPrefix is set it is a prefix and
	// the query walks every hash value that starts with it.
	Hash       string
	HashPrefix bool
	Sort       SortCond
	// Reverse walks from the greatest key down.
	Reverse bool
	// After resumes the walk strictly after this position (in walk order).
	After *Position
}

// ReadTx reads a consistent snapshot of a store.
type ReadTx interface {
	// Get returns the record at key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key Key) (*Record, error)
	// Scan calls fn for each record the query selects, in order, with the
	// record's position, until fn returns false or an error.
	Scan(ctx context.Context, q Query, fn func(rec *Record, pos Position) (bool, error)) error
}

// Tx is a read-write transaction. Nothing it does is visible to others or
// durable until Update returns nil.
type Tx interface {
	ReadTx
	// Put writes rec, replacing any record at rec.Key together with its
	// index entries.
	Put(ctx context.Context, rec *Record) error
	// Delete removes the record at key and its index entries. Deleting a
	// missing key is not an error.
	Delete(ctx context.Context, key Key) error
	// Emit appends ch to the outbox in the same transaction. The store
	// assigns ch.Seq when the transaction commits.
	Emit(ctx context.Context, ch *Change) error
}

// Store is a storage engine for items, their indexes and the outbox.
// Implementations are safe for concurrent use.
type Store interface {
	// View runs fn on a read-only snapshot.
	View(ctx context.Context, fn func(tx ReadTx) error) error
	// Update runs fn in one atomic transaction. When it returns nil every
	// write of fn is committed (and durable if the store is configured so);
	// otherwise none is. fn may run more than once if the engine retries a
	// conflict, so it must not have side effects outside tx.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// Outbox is the store's log of emitted changes.
	Outbox() Outbox
	// Close flushes and closes the store. It is safe to call twice.
	Close(ctx context.Context) error
}

// OutboxStats describes the outbox at one moment.
type OutboxStats struct {
	// Depth is the number of changes kept.
	Depth int64 `json:"depth"`
	// First and Last are the lowest and highest kept sequence numbers (zero
	// when empty). Last never goes backwards, even after a trim empties the
	// outbox or the store restarts.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// Oldest is the commit time of the first kept change.
	Oldest time.Time `json:"oldest"`
}

// Outbox is the durable, ordered log of local changes not yet acknowledged
// by the other side. It is the contract replication pipelines consume.
type Outbox interface {
	// Read returns up to max changes with Seq > after, in Seq order. It
	// never returns a change whose transaction has not committed, and never
	// skips one that commits later with a lower Seq.
	Read(ctx context.Context, after uint64, max int) ([]Change, error)
	// Trim deletes every change with Seq <= upTo.
	Trim(ctx context.Context, upTo uint64) error
	// Stats reports depth and bounds.
	Stats(ctx context.Context) (OutboxStats, error)
	// Notify returns a channel that receives a value (without blocking the
	// writer) after changes are committed, so a reader can wait for more.
	Notify() <-chan struct{}
}

// UpdateLimiter is implemented by stores that commit at most a bounded
// number of writes (puts, deletes and emits) in one Update, such as
// DynamoDB's 100-item transactions. Callers that apply many independent
// changes split them into Updates of at most that many.
type UpdateLimiter interface {
	MaxWritesPerUpdate() int
}

// ChangeCapturer is implemented by stores whose outbox is fed by their own
// change stream (DynamoDB Streams) rather than by Emit: every committed
// write reaches it, also those of other writers of the same table, with
// its origin in the item's version. Writers then never call Emit.
type ChangeCapturer interface {
	CapturesChanges() bool
}

// Prefetcher is implemented by transactions of stores for which one read
// of many keys costs much less than as many single reads (DynamoDB's
// BatchGetItem). Prefetch reads the records at keys ahead; the Gets of
// those keys that follow in the same transaction are answered from what it
// read, with the same guarantees as a Get. Keys a store cannot hold are
// ignored.
type Prefetcher interface {
	Prefetch(ctx context.Context, keys []Key) error
}

// ChangeQuery asks a ChangeFinder for the records a device's catch-up
// must resend: those changed at or after Since that belong to the device
// (their Owner attribute is Site), those of the Broadcast models (models
// without an owner attribute, sent to every device), and every tombstone.
type ChangeQuery struct {
	// Owner is the item attribute naming the owning device.
	Owner string
	// Site is the device.
	Site string
	// Broadcast lists the models whose items belong to no device.
	Broadcast []string
	// Since is the earliest change time wanted (zero: every record). A
	// finder may return records changed before it; the caller filters by
	// version.
	Since time.Time
}

// ChangeFinder is implemented by stores that find the records a catch-up
// must resend through an index, reading only those, rather than by a
// walk of every record. FindChanges calls fn with each record found (in
// no particular order, each once) until fn returns false. It returns an
// error wrapping errors.ErrUnsupported when it cannot answer q (no such
// index, another owner attribute); the caller then walks the store.
type ChangeFinder interface {
	FindChanges(ctx context.Context, q ChangeQuery, fn func(*Record) (bool, error)) error
}

// UpdateSizer is implemented by stores that bound the bytes one Update
// may write (badger: about 15% of a memtable). Callers that apply many
// independent changes split them so that an Update stays well within it.
type UpdateSizer interface {
	MaxUpdateBytes() int64
}

// PrefixEnd is the least byte string greater than every string that
// starts with p, or nil when there is none (p empty or all 0xff): the
// upper bound of a prefix scan (HashPrefix, SortBegins) over keys
// compared as bytes, as every store sorts them.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
