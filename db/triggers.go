package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/oklog/ulid/v2"

	"github.com/iotod/iotod/pipeline"
)

// Trigger deliveries are queued in the store, in the transaction that
// applies their change, so a trigger that fails, hangs or is slow never
// holds replication back and never loses a change: a queued delivery
// stays until its trigger took it or it was set aside as dead.
//
// A queued delivery is the record {pk "~trigger#<name>", sk <ULID>} of
// model "~trigger" holding the change as JSON; a dead one is kept under
// pk "~trigger-dead#<name>" with the reason, until replayed or removed.
const (
	triggerModel     = "~trigger"
	triggerQueuePK   = "~trigger#"
	triggerDeadPK    = "~trigger-dead#"
	maxTriggerRecord = MaxItemSize - 1024
)

// Queued is one trigger delivery waiting (or dead).
type Queued struct {
	// ID orders the deliveries of a trigger (a ULID, the record's key).
	ID string `json:"id,omitempty"`
	// Change is the change to deliver. A change too large to queue with
	// its item (over the store's item size) has ItemOmitted set and no
	// item.
	Change pipeline.Change `json:"change"`
	// ItemOmitted says the item was left out to fit the store.
	ItemOmitted bool `json:"item_omitted,omitempty"`
	// Reason is why a dead delivery was set aside.
	Reason string `json:"reason,omitempty"`
	// Attempts is how many times delivery was tried before it died.
	Attempts int `json:"attempts,omitempty"`
}

// SetLocalTriggers names the trigger queues that every local write (a
// write through this DB, not an applied change) is queued for, in the
// write's transaction; nil: none. Set it before writes begin.
func (d *DB) SetLocalTriggers(names []string) {
	names = slices.Clone(names)
	d.localTriggers.Store(&names)
}

func (d *DB) localTriggerNames() []string {
	if p := d.localTriggers.Load(); p != nil {
		return *p
	}
	return nil
}

// queueTriggers queues c for each trigger of names, in w's transaction:
// one record per trigger, the same body (the id is the record's key).
func (w *txWriter) queueTriggers(ctx context.Context, names []string, c *pipeline.Change) error {
	if len(names) == 0 {
		return nil
	}
	q := Queued{Change: *c}
	body, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("trigger queue: %s %s: %w", c.Model, c.Key, err)
	}
	if len(body) > maxTriggerRecord {
		q.Change.Item, q.ItemOmitted = nil, true
		if body, err = json.Marshal(q); err != nil {
			return fmt.Errorf("trigger queue: %s %s: %w", c.Model, c.Key, err)
		}
	}
	for _, name := range names {
		rec := &pipeline.Record{Key: pipeline.Key{PK: triggerQueuePK + name, SK: ulid.Make().String()}, Model: triggerModel, Item: body}
		if err := w.tx.Put(ctx, rec); err != nil {
			return fmt.Errorf("trigger %s: queue %s %s: %w", name, c.Model, c.Key, err)
		}
	}
	return nil
}

// PendingTriggers returns up to limit queued deliveries of trigger name,
// oldest first; dead lists the dead ones instead.
func (d *DB) PendingTriggers(ctx context.Context, name string, limit int, dead bool) ([]Queued, error) {
	pk := triggerQueuePK + name
	if dead {
		pk = triggerDeadPK + name
	}
	var out []Queued
	err := d.store.View(ctx, func(tx pipeline.ReadTx) error {
		return tx.Scan(ctx, pipeline.Query{Hash: pk}, func(rec *pipeline.Record, _ pipeline.Position) (bool, error) {
			if rec.Model != triggerModel {
				return true, nil
			}
			var q Queued
			if err := json.Unmarshal(rec.Item, &q); err != nil {
				return false, fmt.Errorf("trigger %s: queued delivery %s: %w", name, rec.Key.SK, err)
			}
			q.ID = rec.Key.SK
			out = append(out, q)
			return limit <= 0 || len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("db: trigger %s: %w", name, err)
	}
	return out, nil
}

// SettleTriggers removes delivered entries of trigger name's queue; with
// a reason they are kept as dead instead (with the reason and attempts).
func (d *DB) SettleTriggers(ctx context.Context, name string, done []Queued, reason string, attempts int) error {
	err := d.chunked(len(done), 2, func(start, end int) error {
		return d.store.Update(ctx, func(tx pipeline.Tx) error {
			for _, q := range done[start:end] {
				if err := tx.Delete(ctx, pipeline.Key{PK: triggerQueuePK + name, SK: q.ID}); err != nil && !errors.Is(err, pipeline.ErrNotFound) {
					return err
				}
				if reason == "" {
					continue
				}
				q.Reason, q.Attempts = pipeline.Truncate(reason, 1024), attempts
				body, err := json.Marshal(q)
				if err != nil {
					return err
				}
				if err := tx.Put(ctx, &pipeline.Record{Key: pipeline.Key{PK: triggerDeadPK + name, SK: q.ID}, Model: triggerModel, Item: body}); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("db: trigger %s: settle %d deliveries: %w", name, len(done), err)
	}
	return nil
}

// ReplayTriggers queues trigger name's dead deliveries again (each keeps
// its id, so its place in the order) and returns how many.
func (d *DB) ReplayTriggers(ctx context.Context, name string) (int, error) {
	dead, err := d.PendingTriggers(ctx, name, 0, true)
	if err != nil {
		return 0, err
	}
	err = d.chunked(len(dead), 2, func(start, end int) error {
		return d.store.Update(ctx, func(tx pipeline.Tx) error {
			for _, q := range dead[start:end] {
				q.Reason, q.Attempts = "", 0
				body, err := json.Marshal(q)
				if err != nil {
					return err
				}
				if err := tx.Put(ctx, &pipeline.Record{Key: pipeline.Key{PK: triggerQueuePK + name, SK: q.ID}, Model: triggerModel, Item: body}); err != nil {
					return err
				}
				if err := tx.Delete(ctx, pipeline.Key{PK: triggerDeadPK + name, SK: q.ID}); err != nil && !errors.Is(err, pipeline.ErrNotFound) {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("db: trigger %s: replay: %w", name, err)
	}
	return len(dead), nil
}

// chunked calls fn over [0, n) in ranges a store's update takes, each
// item costing per writes.
func (d *DB) chunked(n, per int, fn func(start, end int) error) error {
	size := n
	if l, ok := d.store.(pipeline.UpdateLimiter); ok && l.MaxWritesPerUpdate() >= per {
		size = l.MaxWritesPerUpdate() / per
	}
	for start := 0; start < n; start += size {
		if err := fn(start, min(start+size, n)); err != nil {
			return err
		}
	}
	return nil
}
