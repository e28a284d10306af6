package db

import (
	"context"
	"fmt"
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

// tombstone is the record a remove leaves: its item names the model.
func tombstone(model string, key pipeline.Key, v pipeline.Version, now time.Time) *pipeline.Record {
	item, _ := json.Marshal(map[string]string{"model": model})
	return &pipeline.Record{Key: key, Model: TombstoneModel, Item: item, Version: v, Expires: now.Add(TombstoneTTL).UnixMilli()}
}

// TombstoneOf returns the model a tombstone record was left by.
func TombstoneOf(rec *pipeline.Record) (string, bool) {
	if rec.Model != TombstoneModel {
		return "", false
	}
	var t struct {
		Model string `json:"model"`
	}
	if json.Unmarshal(rec.Item, &t) != nil || t.Model == "" {
		return "", false
	}
	return t.Model, true
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

// ApplyRemote applies changes replicated from other sites in one
// transaction. Conflicts are whole-item last-writer-wins on the version
// (ties broken by origin), so applying a change twice, or an older one
// after a newer, changes nothing: at-least-once delivery gives
// exactly-once state. Remote changes never go back to the outbox on a
// device; on the cloud they go to the outbox (with their origin kept) when
// the model replicates down, so they reach other devices but not their
// origin. Callbacks see them with Remote set.
func (d *DB) ApplyRemote(ctx context.Context, changes []pipeline.Change) ([]ApplyResult, error) {
	return d.ApplyFrom(ctx, "", "", changes)
}

// ApplyFrom is ApplyRemote for changes a device sent, checking ownership:
// when ownerAttr is set, a change is refused if the incoming item, or the
// item it would replace or remove, has ownerAttr naming another site than
// site. A device cannot write another device's items.
func (d *DB) ApplyFrom(ctx context.Context, site, ownerAttr string, changes []pipeline.Change) ([]ApplyResult, error) {
	if d.closed.Load() {
		return nil, fmt.Errorf("db: %w", pipeline.ErrClosed)
	}
	results := make([]ApplyResult, len(changes))
	err := d.update(ctx, func(w *txWriter) error {
		for i := range changes {
			applied, err := w.applyRemote(ctx, &changes[i], site, ownerAttr)
			if err != nil && !isItemError(err) {
				return err
			}
			results[i] = ApplyResult{Applied: applied, Err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func (w *txWriter) applyRemote(ctx context.Context, c *pipeline.Change, site, ownerAttr string) (bool, error) {
	m, ok := w.d.models[c.Model]
	if !ok {
		return false, fmt.Errorf("%w: unknown model %q on %s", pipeline.ErrNotFound, c.Model, w.d.side)
	}
	if c.Version.IsZero() {
		return false, fmt.Errorf("%w: %s %s: change without a version", pipeline.ErrInvalid, c.Model, c.Key)
	}
	old, rec, err := loadItem(ctx, w.tx, c.Key)
	if err != nil {
		return false, err
	}
	if err := checkOwner(ownerAttr, site, old, c); err != nil {
		return false, err
	}
	if rec != nil && rec.Version.Compare(c.Version) >= 0 {
		return false, nil // stale or a duplicate: last writer already won
	}
	w.d.clock.Observe(c.Version)
	emit := w.d.side == schema.SideCloud && m.emits
	if c.Op == pipeline.OpRemove {
		tomb := tombstone(m.Name, c.Key, c.Version, w.now)
		if err := w.tx.Put(ctx, tomb); err != nil {
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
	item, err := decodeItem(c.Item)
	if err != nil {
		return false, fmt.Errorf("%w: %s %s: item is not a JSON object: %v", pipeline.ErrInvalid, c.Model, c.Key, err)
	}
	if err := checkOwner(ownerAttr, site, item, c); err != nil {
		return false, err
	}
	item[m.typeField] = m.Name
	item[VersionAttr] = c.Version.String()
	if err := m.check(item); err != nil {
		return false, err
	}
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

// checkOwner refuses a change to an item owned by another site.
func checkOwner(attr, site string, item Item, c *pipeline.Change) error {
	if attr == "" || item == nil {
		return nil
	}
	if owner, ok := item[attr].(string); ok && owner != site {
		return fmt.Errorf("%w: %s %s belongs to %q, not to the sending site %q", pipeline.ErrInvalid, c.Model, c.Key, owner, site)
	}
	return nil
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
