package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// Create writes a new item; it fails with pipeline.ErrExists if one is at
// its key (unless p.Exists is nil-ed by an upsert). It returns the item as
// stored, without hidden attributes unless p.Hidden.
func (d *DB) Create(ctx context.Context, model string, props Item, p *Params) (Item, error) {
	return d.writeSingle(ctx, pipeline.OpCreate, model, props, p)
}

// Update merges props into the existing item (pipeline.ErrConditionFailed
// when it is missing). Nested objects merge when partial, else replace; a
// null attribute is removed.
func (d *DB) Update(ctx context.Context, model string, props Item, p *Params) (Item, error) {
	return d.writeSingle(ctx, pipeline.OpUpdate, model, props, p)
}

// Upsert updates the item if it exists and creates it otherwise.
func (d *DB) Upsert(ctx context.Context, model string, props Item, p *Params) (Item, error) {
	return d.writeSingle(ctx, pipeline.OpUpsert, model, props, p)
}

func (d *DB) writeSingle(ctx context.Context, op pipeline.Op, model string, props Item, p *Params) (Item, error) {
	m, err := d.model(model)
	if err != nil {
		return nil, err
	}
	pr, err := d.prepare(m, op, props, p)
	if err != nil {
		return nil, err
	}
	var out Item
	err = d.update(ctx, func(w *txWriter) error {
		item, err := w.put(ctx, pr)
		out = item
		return err
	})
	if err != nil {
		return nil, err
	}
	return m.visible(out, pr.p), nil
}

// update runs fn in one storage transaction and publishes its events after
// the commit. The read cache forgets every key the transaction wrote once
// it committed (or failed), before update returns.
func (d *DB) update(ctx context.Context, fn func(w *txWriter) error) error {
	var w *txWriter
	var touched []pipeline.Key
	err := d.store.Update(ctx, func(tx pipeline.Tx) error {
		if d.cache != nil {
			tx = touchTx{Tx: tx, keys: &touched}
		}
		w = &txWriter{d: d, tx: tx, now: d.now()}
		return fn(w)
	})
	if d.cache != nil {
		d.cache.invalidate(touched)
	}
	if err != nil {
		return err
	}
	d.publish(ctx, w.events)
	return nil
}

// Remove deletes the item props address and returns how many it removed.
// A partial key removes every matching item only with p.Many; without it a
// partial key is an error.
func (d *DB) Remove(ctx context.Context, model string, props Item, p *Params) (int, error) {
	m, err := d.model(model)
	if err != nil {
		return 0, err
	}
	props = d.blendContext(m, props)
	key, missing := m.primaryKey(props)
	if len(missing) == 0 {
		var n int
		err := d.update(ctx, func(w *txWriter) error {
			ok, err := w.remove(ctx, m, key, p)
			if ok {
				n = 1
			}
			return err
		})
		return n, err
	}
	if p == nil || !p.Many {
		return 0, invalid(m.Name, "missing key attributes: %v (set many to remove every match)", missing)
	}
	fp := *p
	fp.Limit, fp.Next, fp.Count = 0, "", false
	var n int
	err = d.update(ctx, func(w *txWriter) error {
		n = 0
		keys, err := d.findKeys(ctx, w.tx, m, props, &fp)
		if err != nil {
			return err
		}
		for _, k := range keys {
			ok, err := w.remove(ctx, m, k, nil)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		return nil
	})
	return n, err
}

// BatchResult is the outcome of one write of a Batch.
type BatchResult struct {
	Item  Item   `json:"item,omitempty"`
	Error string `json:"error,omitempty"`
	// Err is the error itself, for Go callers.
	Err error `json:"-"`
}

// Batch applies each write independently, in order, in one storage
// transaction: a write that fails leaves the others in place and reports its
// error in its result. The returned error is for the batch as a whole
// (storage failure), in which case nothing was written.
func (d *DB) Batch(ctx context.Context, ops []WriteOp) ([]BatchResult, error) {
	results := make([]BatchResult, len(ops))
	preps := make([]*prepared, len(ops))
	for i, op := range ops {
		pr, err := d.prepareOp(op)
		if err != nil {
			results[i] = BatchResult{Err: fmt.Errorf("ops[%d]: %w", i, err)}
			continue
		}
		preps[i] = pr
	}
	err := d.update(ctx, func(w *txWriter) error {
		for i, pr := range preps {
			if pr == nil {
				continue
			}
			item, err := w.apply(ctx, pr)
			if err != nil {
				if !isItemError(err) {
					return err
				}
				results[i] = BatchResult{Err: fmt.Errorf("ops[%d]: %w", i, err)}
				continue
			}
			results[i] = BatchResult{Item: item}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range results {
		if results[i].Err != nil {
			results[i].Error = results[i].Err.Error()
		} else if preps[i] != nil {
			results[i].Item = preps[i].m.visible(results[i].Item, preps[i].p)
		}
	}
	return results, nil
}

// Transact applies every write in one storage transaction: all of them, or,
// if any fails, none.
func (d *DB) Transact(ctx context.Context, ops []WriteOp) ([]Item, error) {
	preps := make([]*prepared, len(ops))
	for i, op := range ops {
		pr, err := d.prepareOp(op)
		if err != nil {
			return nil, fmt.Errorf("ops[%d]: %w", i, err)
		}
		preps[i] = pr
	}
	out := make([]Item, len(ops))
	err := d.update(ctx, func(w *txWriter) error {
		for i, pr := range preps {
			item, err := w.apply(ctx, pr)
			if err != nil {
				return fmt.Errorf("ops[%d]: %w", i, err)
			}
			out[i] = item
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, pr := range preps {
		out[i] = pr.m.visible(out[i], pr.p)
	}
	return out, nil
}

func (d *DB) prepareOp(op WriteOp) (*prepared, error) {
	m, err := d.model(op.Model)
	if err != nil {
		return nil, err
	}
	switch op.Op {
	case pipeline.OpCreate, pipeline.OpUpdate, pipeline.OpUpsert:
		return d.prepare(m, op.Op, op.Item, op.Params)
	case pipeline.OpRemove:
		props := d.blendContext(m, op.Item)
		key, missing := m.primaryKey(props)
		if len(missing) > 0 {
			return nil, invalid(m.Name, "missing key attributes: %v", missing)
		}
		p := op.Params
		if p == nil {
			p = &Params{}
		}
		return &prepared{m: m, op: pipeline.OpRemove, p: p, key: key}, nil
	}
	return nil, fmt.Errorf("%w: unknown op %q (want create, update, upsert or remove)", pipeline.ErrInvalid, op.Op)
}

// apply runs one prepared write of a batch or transaction. A remove
// returns a nil item.
func (w *txWriter) apply(ctx context.Context, pr *prepared) (Item, error) {
	if pr.op == pipeline.OpRemove {
		_, err := w.remove(ctx, pr.m, pr.key, pr.p)
		return nil, err
	}
	return w.put(ctx, pr)
}

// isItemError tells a write's own failure (validation, condition) from a
// storage failure that must fail the whole batch.
func isItemError(err error) bool {
	for _, e := range []error{pipeline.ErrInvalid, pipeline.ErrExists, pipeline.ErrConditionFailed, pipeline.ErrTooLarge, pipeline.ErrNotFound} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// touchTx records the keys a transaction writes, for the read cache.
type touchTx struct {
	pipeline.Tx
	keys *[]pipeline.Key
}

func (t touchTx) Put(ctx context.Context, rec *pipeline.Record) error {
	if rec != nil {
		*t.keys = append(*t.keys, rec.Key)
	}
	return t.Tx.Put(ctx, rec)
}

func (t touchTx) Delete(ctx context.Context, key pipeline.Key) error {
	*t.keys = append(*t.keys, key)
	return t.Tx.Delete(ctx, key)
}

// Prefetch passes on to a store that prefetches.
func (t touchTx) Prefetch(ctx context.Context, keys []pipeline.Key) error {
	if p, ok := t.Tx.(pipeline.Prefetcher); ok {
		return p.Prefetch(ctx, keys)
	}
	return nil
}
