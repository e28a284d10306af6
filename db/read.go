package db

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/iotod/iotod/db/where"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// Get returns the item props address. Every key input must be given; a
// missing item is an error wrapping pipeline.ErrNotFound.
func (d *DB) Get(ctx context.Context, model string, props Item, p *Params) (Item, error) {
	m, err := d.model(model)
	if err != nil {
		return nil, err
	}
	props = d.blendContext(m, props)
	key, missing := m.primaryKey(props)
	if len(missing) > 0 {
		return nil, invalid(m.Name, "missing key attributes: %s (use find for a partial key)", strings.Join(missing, ", "))
	}
	var item Item
	err = d.store.View(ctx, func(tx pipeline.ReadTx) error {
		rec, err := tx.Get(ctx, key)
		if errors.Is(err, pipeline.ErrNotFound) || (err == nil && rec.Model != m.Name) {
			return fmt.Errorf("%w: %s %s", pipeline.ErrNotFound, m.Name, key)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		if item, err = decodeItemString(string(rec.Item), m, p); err != nil {
			return fmt.Errorf("stored item %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return project(item, p), nil
}

// Find returns a page of the items of model that props select, in
// sort-key order (or reverse). The key attributes of props, filled as far
// as they go, choose the items: a complete sort key matches it exactly, a
// partial one is a begins-with, and the sort attribute may instead be a
// condition object such as {"begins": "x"}, {"between": ["a", "b"]} or
// {">=": "x"}. A page holds at most Params.Limit items (DefaultLimit when
// unset, at most MaxLimit), counted after the where filter; when more
// match, Result.Next continues (FindAll pages through every item).
func (d *DB) Find(ctx context.Context, model string, props Item, p *Params) (*Result, error) {
	m, err := d.model(model)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &Params{}
	}
	limit, err := pageLimit(m.Name, p)
	if err != nil {
		return nil, err
	}
	res := &Result{Items: []Item{}}
	err = d.store.View(ctx, func(tx pipeline.ReadTx) error {
		return d.scan(ctx, tx, m, d.blendContext(m, props), p, !p.Count, func(item Item, _ *pipeline.Record, pos pipeline.Position) (bool, error) {
			if limit > 0 && res.Count == limit {
				// one more match exists: the page has a next
				res.Next = encodeNext(pos)
				return false, nil
			}
			res.Count++
			if !p.Count {
				res.Items = append(res.Items, project(item, p))
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// pageLimit is the number of matches a find stops at (0: none, for a
// count without a limit).
func pageLimit(model string, p *Params) (int, error) {
	switch {
	case p.Limit < 0:
		return 0, invalid(model, "limit %d: want a number of items, 0 or more (0: the default page of %d; over %d: pages of %d)",
			p.Limit, DefaultLimit, MaxLimit, MaxLimit)
	case p.Count:
		return p.Limit, nil
	case p.Limit == 0:
		return DefaultLimit, nil
	case p.Limit > MaxLimit:
		return MaxLimit, nil
	}
	return p.Limit, nil
}

// FindAll yields every item a find selects, page after page of
// Params.Limit items (each page is read on its own, so a write between two
// pages may or may not be seen), starting after Params.Next if set. It is
// for callers that need every item, which Find's pages would cut. A Count
// find is refused. The first error ends it.
func (d *DB) FindAll(ctx context.Context, model string, props Item, p *Params) iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		page := Params{}
		if p != nil {
			page = *p
		}
		if page.Count {
			yield(nil, invalid(model, "FindAll returns items: use Find to count"))
			return
		}
		for {
			res, err := d.Find(ctx, model, props, &page)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, it := range res.Items {
				if !yield(it, nil) {
					return
				}
			}
			if res.Next == "" {
				return
			}
			page.Next = res.Next
		}
	}
}

// scan walks the items a find selects, after the type check and where
// filter, passing the position of the previously returned item so a page can
// end there. With decode, fn gets each item as the caller sees it (hidden
// attributes left out unless p.Hidden, not projected); without, a nil item:
// an item is decoded only to be returned or filtered.
func (d *DB) scan(ctx context.Context, tx pipeline.ReadTx, m *model, props Item, p *Params, decode bool, fn func(Item, *pipeline.Record, pipeline.Position) (bool, error)) error {
	q, err := m.query(props, p)
	if err != nil {
		return err
	}
	var filter *where.Expr
	if p.Where != "" {
		if filter, err = where.Parse(p.Where, p.Substitutions); err != nil {
			return fmt.Errorf("%w: %s: %v", pipeline.ErrInvalid, m.Name, err)
		}
	}
	var last pipeline.Position
	if q.After != nil {
		last = *q.After
	}
	return tx.Scan(ctx, q, func(rec *pipeline.Record, pos pipeline.Position) (bool, error) {
		if rec.Model != m.Name {
			return true, nil
		}
		var item Item
		switch {
		case filter != nil:
			if item, err = decodeItem(rec.Item); err != nil {
				return false, fmt.Errorf("stored item %s: %w", rec.Key, err)
			}
			if !filter.Eval(item) {
				return true, nil
			}
			if decode {
				item = m.hide(item, p)
			}
		case decode:
			if item, err = decodeItemString(string(rec.Item), m, p); err != nil {
				return false, fmt.Errorf("stored item %s: %w", rec.Key, err)
			}
		}
		more, err := fn(item, rec, last)
		last = pos
		return more, err
	})
}

// findKeys lists the primary keys a find selects.
func (d *DB) findKeys(ctx context.Context, tx pipeline.ReadTx, m *model, props Item, p *Params) ([]pipeline.Key, error) {
	var keys []pipeline.Key
	err := d.scan(ctx, tx, m, props, p, false, func(_ Item, rec *pipeline.Record, _ pipeline.Position) (bool, error) {
		keys = append(keys, rec.Key)
		return true, nil
	})
	return keys, err
}

// query turns find props and params into a storage query.
func (m *model) query(props Item, p *Params) (pipeline.Query, error) {
	q := pipeline.Query{Index: pipeline.PrimaryIndex, Reverse: p.Reverse}
	hashAttr, sortAttr := m.primary.Hash, m.primary.Sort
	if p.Index != "" && p.Index != pipeline.PrimaryIndex {
		var ix *schema.Index
		for _, s := range m.secondary {
			if s.Name == p.Index {
				ix = s
			}
		}
		if ix == nil {
			return q, invalid(m.Name, "unknown index %q", p.Index)
		}
		q.Index, hashAttr, sortAttr = ix.Name, m.hashAttr(ix), ix.Sort
	}
	cond, hasCond, err := sortCondition(m.Name, sortAttr, props)
	if err != nil {
		return q, err
	}
	if hasCond {
		props = withoutKey(props, sortAttr)
	}
	hash, complete, _ := m.keyValue(hashAttr, props)
	q.Hash, q.HashPrefix = hash, !complete
	switch {
	case hasCond:
		q.Sort = cond
	case sortAttr != "":
		if v, complete, given := m.keyValue(sortAttr, props); given && complete {
			q.Sort = pipeline.SortCond{Op: pipeline.SortEQ, Values: []string{v}}
		} else if given && v != "" {
			q.Sort = pipeline.SortCond{Op: pipeline.SortBegins, Values: []string{v}}
		}
	}
	if p.Next != "" {
		pos, err := decodeNext(p.Next)
		if err != nil {
			return q, invalid(m.Name, "next: %v", err)
		}
		q.After = pos
	}
	return q, nil
}

func withoutKey(props Item, k string) Item {
	out := make(Item, len(props))
	for key, v := range props {
		if key != k {
			out[key] = v
		}
	}
	return out
}

// sortCondition reads a sort-key condition object such as {"begins": "x"}.
func sortCondition(model, attr string, props Item) (pipeline.SortCond, bool, error) {
	obj, ok := props[attr].(map[string]any)
	if attr == "" || !ok {
		return pipeline.SortCond{}, false, nil
	}
	if len(obj) != 1 {
		return pipeline.SortCond{}, false, invalid(model+"."+attr, "a sort-key condition has exactly one operator")
	}
	for op, v := range obj {
		switch pipeline.SortOp(op) {
		case pipeline.SortBegins, "begins_with":
			return pipeline.SortCond{Op: pipeline.SortBegins, Values: []string{scalarString(v)}}, true, nil
		case pipeline.SortLT, pipeline.SortLE, pipeline.SortEQ, pipeline.SortGE, pipeline.SortGT:
			return pipeline.SortCond{Op: pipeline.SortOp(op), Values: []string{scalarString(v)}}, true, nil
		case pipeline.SortBetween:
			arr, ok := v.([]any)
			if !ok || len(arr) != 2 {
				return pipeline.SortCond{}, false, invalid(model+"."+attr, "between takes a list of two values")
			}
			return pipeline.SortCond{Op: pipeline.SortBetween, Values: []string{scalarString(arr[0]), scalarString(arr[1])}}, true, nil
		default:
			return pipeline.SortCond{}, false, invalid(model+"."+attr, "unknown sort-key operator %q (want begins, between, <, <=, =, >=, >)", op)
		}
	}
	return pipeline.SortCond{}, false, nil
}

func encodeNext(pos pipeline.Position) string {
	b, _ := json.Marshal(pos)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeNext(s string) (*pipeline.Position, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not a token this database issued")
	}
	var pos pipeline.Position
	if err := json.Unmarshal(b, &pos); err != nil {
		return nil, fmt.Errorf("not a token this database issued")
	}
	return &pos, nil
}
