package db

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// catchUpSlack is how much earlier than its cursor's wall time a catch-up
// looks in a store's change index, on top of the clock bound: an item's
// updated time (what such an index is sorted by) comes from its writer's
// clock, its version from a hybrid clock that may run ahead of it.
const catchUpSlack = time.Minute

// CatchUp says what a device's catch-up resends.
type CatchUp struct {
	// Site is the device asking.
	Site string
	// Owner is the item attribute naming the owning device; with Site it
	// lets a store with a change index (pipeline.ChangeFinder) read only
	// the device's records. Empty: every record is read.
	Owner string
	// Since is the device's cursor: changes at or below it are not sent.
	// Zero resends everything (a full resync).
	Since pipeline.Version
	// Keep says whether a record of a model (item nil for a tombstone)
	// goes to the device.
	Keep func(model string, item Item) bool
}

// ChangesSince calls fn with a change for every item and tombstone that
// q.Keep accepts and whose version is above q.Since: the changes a
// catch-up must resend, items as upserts with their whole snapshot,
// tombstones as removes. An item written without a version (by OneTable
// or an SDK straight into a cloud table) counts as changed at its updated
// time, by this site. A store with a change index answers from it;
// others are walked in key order.
func (d *DB) ChangesSince(ctx context.Context, q CatchUp, fn func(pipeline.Change) error) error {
	visit := func(rec *pipeline.Record) (bool, error) {
		c, ok := d.catchUpChange(rec, q)
		if !ok {
			return true, nil
		}
		return true, fn(c)
	}
	if f, ok := d.store.(pipeline.ChangeFinder); ok && q.Owner != "" && q.Site != "" {
		err := f.FindChanges(ctx, d.changeQuery(q), visit)
		if !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	return d.store.View(ctx, func(tx pipeline.ReadTx) error {
		return tx.Scan(ctx, pipeline.Query{HashPrefix: true}, func(rec *pipeline.Record, _ pipeline.Position) (bool, error) {
			return visit(rec)
		})
	})
}

// changeQuery is q for a store's change index: the models without the
// owner attribute are broadcast, and the time bound is the cursor's wall
// time less the clock bound and catchUpSlack.
func (d *DB) changeQuery(q CatchUp) pipeline.ChangeQuery {
	cq := pipeline.ChangeQuery{Owner: q.Owner, Site: q.Site}
	for name, m := range d.models {
		if m.Fields[q.Owner] == nil {
			cq.Broadcast = append(cq.Broadcast, name)
		}
	}
	slices.Sort(cq.Broadcast)
	if !q.Since.IsZero() {
		cq.Since = time.UnixMilli(q.Since.Wall).Add(-d.maxSkew - catchUpSlack)
	}
	return cq
}

// catchUpChange is the change a catch-up resends for rec, if any.
func (d *DB) catchUpChange(rec *pipeline.Record, q CatchUp) (pipeline.Change, bool) {
	if rec.Model == metaModel {
		return pipeline.Change{}, false
	}
	c := pipeline.Change{Key: rec.Key, Version: rec.Version}
	if t, ok := tombstoneOf(rec); ok {
		// The remove of another device's item is none of this device's
		// business: tombstones keep the owner of what they removed.
		if !q.Keep(t.Model, nil) || q.Owner != "" && q.Site != "" && t.Owner != "" && t.Owner != q.Site {
			return pipeline.Change{}, false
		}
		c.Model, c.Op = t.Model, pipeline.OpRemove
	} else {
		m := d.models[rec.Model]
		item, err := decodeItem(rec.Item)
		if m == nil || err != nil || !q.Keep(rec.Model, item) {
			return pipeline.Change{}, false
		}
		c.Model, c.Op, c.Item = rec.Model, pipeline.OpUpsert, rec.Item
		if c.Version.IsZero() {
			// Written outside iotod: ordered by its updated time (at least
			// 1 ms, so a full resync still sends it), as this site's.
			c.Version = m.storedVersion(rec, item)
			c.Version.Wall = max(c.Version.Wall, 1)
			c.Version.Origin = d.site
		}
	}
	if c.Version.IsZero() || (!q.Since.IsZero() && c.Version.Compare(q.Since) <= 0) {
		return pipeline.Change{}, false
	}
	c.Origin = c.Version.Origin
	return c, true
}
