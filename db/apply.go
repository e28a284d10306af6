package db

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	json "github.com/goccy/go-json"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// TombstoneModel marks the record a replicated remove leaves at its key,
// so that a late, older update cannot bring the item back. Reads skip it;
// it expires after TombstoneTTL.
const TombstoneModel = "~tombstone"

// TombstoneTTL is how long a remove's tombstone beats late updates.
const TombstoneTTL = 7 * 24 * time.Hour

// tombstone is the record a remove leaves: its item names the model and
// the owner of what was removed, so the key stays the model's and the
// owner's until it expires.
func tombstone(model, owner string, key pipeline.Key, v pipeline.Version, now time.Time) *pipeline.Record {
	item, _ := json.Marshal(tombstoneItem{Model: model, Owner: owner})
	return &pipeline.Record{Key: key, Model: TombstoneModel, Item: item, Version: v, Expires: now.Add(TombstoneTTL).UnixMilli()}
}

type tombstoneItem struct {
	Model string `json:"model"`
	Owner string `json:"owner,omitempty"`
}

func tombstoneOf(rec *pipeline.Record) (tombstoneItem, bool) {
	var t tombstoneItem
	if rec.Model != TombstoneModel || json.Unmarshal(rec.Item, &t) != nil || t.Model == "" {
		return tombstoneItem{}, false
	}
	return t, true
}

// TombstoneOf returns the model a tombstone record was left by.
func TombstoneOf(rec *pipeline.Record) (string, bool) {
	t, ok := tombstoneOf(rec)
	return t.Model, ok
}

// ApplyResult is what happened to one replicated change.
type ApplyResult struct {
	// Applied is false when the stored version was as new or newer: the
	// change was already applied (or lost to a later write) and is a no-op.
	Applied bool
	// Err is set when the change was refused (unknown model, invalid item);
	// refusing is final, the change is not retried.
	Err error
}

// ApplyRemote applies changes replicated from other sites for a trusted
// local caller (a test, a benchmark, a migration): Apply with no sender,
// so each change's origin is taken as its sender.
func (d *DB) ApplyRemote(ctx context.Context, changes []pipeline.Change) ([]ApplyResult, error) {
	return d.Apply(ctx, Source{}, changes)
}

// Apply applies changes replicated from another site in one transaction
// (in several of at most its limit, for a store that bounds the writes of
// one transaction: each change is independent, so that changes nothing
// but atomicity across changes, which replication does not need).
// Every change is validated first, inside the transaction, against what
// is stored (see validate): a change that fails is refused with its
// reason and nothing of it is stored; the others still apply. Conflicts
// are whole-item last-writer-wins on the version (ties broken by origin),
// so applying a change twice, or an older one after a newer, changes
// nothing: at-least-once delivery gives exactly-once state. Remote
// changes never go back to the outbox on a device; on the cloud they go
// to the outbox (with their origin kept) when the model replicates down,
// so they reach other devices but not their origin. Callbacks see them
// with Remote set. The error is for the store failing, not for a change.
func (d *DB) Apply(ctx context.Context, src Source, changes []pipeline.Change) ([]ApplyResult, error) {
	if d.closed.Load() {
		return nil, fmt.Errorf("db: %w", pipeline.ErrClosed)
	}
	results := make([]ApplyResult, len(changes))
	chunk := d.applyChunk(len(src.Triggers))
	for start := 0; start < len(changes); {
		end := d.sizedEnd(changes, start, start+min(chunk, len(changes)-start), len(src.Triggers))
		if err := d.applyRange(ctx, src, changes, results, start, end); err != nil {
			return nil, err
		}
		start = end
	}
	return results, nil
}

// sizedEnd shortens [start, end) so that its writes stay within half of
// what one Update of a store that bounds its bytes holds
// (pipeline.UpdateSizer): each change writes its record, its outbox entry
// and a delivery per trigger, each about the item's size plus keys and
// version. At least one change is taken.
func (d *DB) sizedEnd(changes []pipeline.Change, start, end, triggers int) int {
	s, ok := d.store.(pipeline.UpdateSizer)
	if !ok || s.MaxUpdateBytes() <= 0 {
		return end
	}
	budget := s.MaxUpdateBytes() / 2
	copies := int64(2 + triggers)
	var used int64
	for i := start; i < end; i++ {
		used += copies * int64(len(changes[i].Item)+len(changes[i].Key.PK)+len(changes[i].Key.SK)+256)
		if used > budget && i > start {
			return i
		}
	}
	return end
}

// applyRange applies changes[start:end] in one store transaction, or,
// when the store finds the transaction too large (badger bounds a
// transaction's size), in two halves, and so on.
func (d *DB) applyRange(ctx context.Context, src Source, changes []pipeline.Change, results []ApplyResult, start, end int) error {
	err := d.update(ctx, func(w *txWriter) error {
		if err := w.prefetch(ctx, changes[start:end]); err != nil {
			return err
		}
		for i := start; i < end; i++ {
			applied, err := w.applyRemote(ctx, &changes[i], src)
			if err != nil && (!isItemError(err) || errors.Is(err, pipeline.ErrTxTooLarge)) {
				return err
			}
			if applied && err == nil {
				if err := w.queueTriggers(ctx, src.Triggers, &changes[i]); err != nil {
					return err
				}
			}
			results[i] = ApplyResult{Applied: applied, Err: err}
		}
		return nil
	})
	switch {
	case !errors.Is(err, pipeline.ErrTxTooLarge):
		return err
	case end-start > 1:
		mid := start + (end-start)/2
		if err := d.applyRange(ctx, src, changes, results, start, mid); err != nil {
			return err
		}
		return d.applyRange(ctx, src, changes, results, mid, end)
	}
	// One change alone is too large for a transaction (with its outbox
	// entry and trigger deliveries): it is refused, not retried forever.
	results[start] = ApplyResult{Err: fmt.Errorf("%s %s: %w", changes[start].Model, changes[start].Key, err)}
	return nil
}

// prefetch reads ahead the keys of the changes whose envelope is valid,
// for a store that reads many keys at once for less (pipeline.Prefetcher).
func (w *txWriter) prefetch(ctx context.Context, changes []pipeline.Change) error {
	p, ok := w.tx.(pipeline.Prefetcher)
	if !ok {
		return nil
	}
	keys := make([]pipeline.Key, 0, len(changes))
	for i := range changes {
		if changes[i].Validate() == nil {
			keys = append(keys, changes[i].Key)
		}
	}
	return p.Prefetch(ctx, keys)
}

// applyChunk is how many replicated changes one store transaction takes:
// all of them, unless the store bounds its writes per Update (each change
// writes its record, emits it unless the store captures changes, and
// queues a delivery per trigger).
func (d *DB) applyChunk(triggers int) int {
	l, ok := d.store.(pipeline.UpdateLimiter)
	if !ok || l.MaxWritesPerUpdate() < 2 {
		return math.MaxInt
	}
	per := 1 + triggers // its record, and its queued trigger deliveries
	if !d.captured {
		per++ // and its emit
	}
	return max(1, l.MaxWritesPerUpdate()/per)
}

func (w *txWriter) applyRemote(ctx context.Context, c *pipeline.Change, src Source) (bool, error) {
	in, err := w.validate(ctx, c, src)
	if err != nil {
		return false, err
	}
	m, old, rec := in.m, in.old, in.rec
	if rec != nil && m.storedVersion(rec, old).Compare(c.Version) >= 0 {
		return false, nil // stale or a duplicate: last writer already won
	}
	w.d.clock.Observe(c.Version)
	emit := w.d.side == schema.SideCloud && m.emits && !w.d.captured
	if c.Op == pipeline.OpRemove {
		if err := w.tx.Put(ctx, tombstone(m.Name, in.owner, c.Key, c.Version, w.now)); err != nil {
			return false, fmt.Errorf("tombstone %s %s: %w", c.Model, c.Key, err)
		}
		if emit {
			if err := w.emitRemote(ctx, c, nil); err != nil {
				return false, err
			}
		}
		if old != nil {
			w.events = append(w.events, Event{Model: m.Name, Op: pipeline.OpRemove, Key: c.Key, Old: old, Version: c.Version, Origin: c.Origin, Remote: true})
		}
		return true, nil
	}
	item := in.new
	data, err := json.Marshal(item)
	if err != nil {
		return false, fmt.Errorf("%w: %s %s: %v", pipeline.ErrInvalid, c.Model, c.Key, err)
	}
	if len(data) > MaxItemSize {
		return false, fmt.Errorf("%w: %s %s is %d bytes, over the %d byte item limit", pipeline.ErrTooLarge, m.Name, c.Key, len(data), MaxItemSize)
	}
	rec = &pipeline.Record{Key: c.Key, Model: m.Name, Item: data, Indexes: m.indexEntries(item), Version: c.Version, Expires: m.expires(item)}
	if err := w.tx.Put(ctx, rec); err != nil {
		return false, fmt.Errorf("store %s %s: %w", m.Name, c.Key, err)
	}
	if emit {
		if err := w.emitRemote(ctx, c, data); err != nil {
			return false, err
		}
	}
	op := c.Op
	if old == nil {
		op = pipeline.OpCreate
	} else if op == pipeline.OpCreate {
		op = pipeline.OpUpdate
	}
	w.events = append(w.events, Event{Model: m.Name, Op: op, Key: c.Key, Old: old, New: item, Version: c.Version, Origin: c.Origin, Remote: true})
	return true, nil
}

// storedVersion is the version a change must beat to replace what is
// stored: the record's, or for an item written without one (by OneTable
// or an SDK, straight into a cloud table) its updated time, so such an
// item is ordered by when it was written.
func (m *model) storedVersion(rec *pipeline.Record, item Item) pipeline.Version {
	if !rec.Version.IsZero() || item == nil {
		return rec.Version
	}
	if t, err := toTime(item[m.updatedField]); err == nil && m.updatedField != "" && item[m.updatedField] != nil {
		return pipeline.Version{Wall: t.UnixMilli()}
	}
	return rec.Version
}

// emitRemote passes a replicated change on through this side's outbox,
// keeping its origin and version.
func (w *txWriter) emitRemote(ctx context.Context, c *pipeline.Change, data []byte) error {
	ch := &pipeline.Change{Model: c.Model, Op: c.Op, Key: c.Key, Item: data, Version: c.Version, Origin: c.Origin, Time: w.now.UnixMilli()}
	if err := w.tx.Emit(ctx, ch); err != nil {
		return fmt.Errorf("outbox %s %s: %w", c.Model, c.Key, err)
	}
	return nil
}
