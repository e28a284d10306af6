package db

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"strings"
	"time"

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
	props = d.readProps(m, props)
	key, missing := m.primaryKey(props)
	if len(missing) > 0 {
		return nil, invalid(m.Name, "missing key attributes: %s (use find for a partial key)", strings.Join(missing, ", "))
	}
	var item Item
	c := d.cache
	var h, gen uint64
	if c != nil {
		h = c.keyHash(key)
		if ci, ok := c.items.get(key, h); ok {
			if ci.expires != 0 && ci.expires <= time.Now().UnixMilli() {
				return nil, fmt.Errorf("%w: %s %s", pipeline.ErrNotFound, m.Name, key)
			}
			if item, err = decodeItemString(ci.item, m, p); err != nil {
				return nil, fmt.Errorf("stored item %s: %w", key, err)
			}
			return project(item, p), nil
		}
		gen = c.items.gen(h)
	}
	err = d.store.View(ctx, func(tx pipeline.ReadTx) error {
		rec, err := tx.Get(ctx, key)
		if errors.Is(err, pipeline.ErrNotFound) || (err == nil && rec.Model != m.Name) {
			return fmt.Errorf("%w: %s %s", pipeline.ErrNotFound, m.Name, key)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		text := string(rec.Item)
		if item, err = decodeItemString(text, m, p); err != nil {
			return fmt.Errorf("stored item %s: %w", key, err)
		}
		if c != nil {
			c.items.fill(key, h, gen, cachedItem{item: text, expires: rec.Expires}, int64(len(text)+len(key.PK)+len(key.SK))+cachedItemOverhead)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return project(item, p), nil
}

// cachedItemOverhead estimates the bytes of a cached item beyond its key
// and JSON: the entry, its map slot and ring slot.
const cachedItemOverhead = 120

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
	f, err := d.planFind(m, d.blendContext(m, props), p, !p.Count)
	if err != nil {
		return nil, err
	}
	page := func(item Item, _ pipeline.Key, pos pipeline.Position) (bool, error) {
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
	}
	if err := d.findCached(ctx, f, page); err != nil {
		return nil, err
	}
	return res, nil
}

// findCached runs a find of a whole hash key of the primary index from
// the read cache's copy of that partition, reading the partition into the
// cache when it is missing; other finds, and partitions over
// maxPartRecords, go to the store.
func (d *DB) findCached(ctx context.Context, f *findPlan, fn scanFunc) error {
	c, q := d.cache, f.q
	if c != nil && c.partsOn && !q.HashPrefix && q.Index == pipeline.PrimaryIndex {
		h := c.partHash(q.Hash)
		part, ok := c.parts.get(q.Hash, h)
		if !ok {
			gen := c.parts.gen(h)
			var size int64
			var err error
			if part, size, err = d.loadPart(ctx, q.Hash); err != nil {
				return err
			}
			c.parts.fill(q.Hash, h, gen, part, size)
		}
		if !part.big {
			return f.walk(ctx, part, fn)
		}
	}
	return d.store.View(ctx, func(tx pipeline.ReadTx) error {
		return tx.Scan(ctx, q, f.visitor(fn))
	})
}

// loadPart reads every live item of hash key pk of the primary index, or
// marks the partition big when it has more than maxPartRecords records.
func (d *DB) loadPart(ctx context.Context, pk string) (*cachedPart, int64, error) {
	part := &cachedPart{}
	size := int64(len(pk)) + cachedItemOverhead
	err := d.store.View(ctx, func(tx pipeline.ReadTx) error {
		n := 0
		return tx.Scan(ctx, pipeline.Query{Index: pipeline.PrimaryIndex, Hash: pk}, func(rec *pipeline.Record, _ pipeline.Position) (bool, error) {
			if n++; n > maxPartRecords {
				part.big, part.recs = true, nil
				return false, nil
			}
			m := d.models[rec.Model]
			if m == nil {
				return true, nil // not an item of this side: no find returns it
			}
			cr, err := newCachedRec(m, rec)
			if err != nil {
				return false, err
			}
			part.recs = append(part.recs, cr)
			size += int64(len(rec.Item)+len(rec.Key.SK)) + 48*int64(len(cr.visible)+len(cr.extra)) + 200
			return true, nil
		})
	})
	if part.big {
		size = int64(len(pk)) + cachedItemOverhead
	}
	return part, size, err
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

// scanFunc receives each item a find selects, its key, and the position
// of the item returned before it (where a page that ends here resumes).
type scanFunc func(item Item, key pipeline.Key, last pipeline.Position) (bool, error)

// findPlan is a find turned into a storage query, with what each record
// must pass.
type findPlan struct {
	m      *model
	p      *Params
	q      pipeline.Query
	filter *where.Expr
	decode bool
	last   pipeline.Position
}

func (d *DB) planFind(m *model, props Item, p *Params, decode bool) (*findPlan, error) {
	q, err := m.query(props, p)
	if err != nil {
		return nil, err
	}
	f := &findPlan{m: m, p: p, q: q, decode: decode}
	if p.Where != "" {
		if f.filter, err = where.Parse(p.Where, p.Substitutions); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", pipeline.ErrInvalid, m.Name, err)
		}
		// An attribute the model does not have would match nothing, silently.
		for _, a := range f.filter.Attributes() {
			if m.Fields[a] == nil && a != VersionAttr {
				return nil, invalid(m.Name+"."+a, "unknown attribute in where (the model declares %s)", strings.Join(m.FieldNames, ", "))
			}
		}
	}
	if q.After != nil {
		f.last = *q.After
	}
	return f, nil
}

// scan walks the items a find selects in tx, after the type check and
// where filter, passing the position of the previously returned item so a
// page can end there. With decode, fn gets each item as the caller sees it
// (hidden attributes left out unless p.Hidden, not projected); without, a
// nil item: an item is decoded only to be returned or filtered.
func (d *DB) scan(ctx context.Context, tx pipeline.ReadTx, m *model, props Item, p *Params, decode bool, fn scanFunc) error {
	f, err := d.planFind(m, props, p, decode)
	if err != nil {
		return err
	}
	return tx.Scan(ctx, f.q, f.visitor(fn))
}

// visitor checks and decodes the records a store scan yields.
func (f *findPlan) visitor(fn scanFunc) func(rec *pipeline.Record, pos pipeline.Position) (bool, error) {
	m, p := f.m, f.p
	return func(rec *pipeline.Record, pos pipeline.Position) (bool, error) {
		if rec.Model != m.Name {
			return true, nil
		}
		var item Item
		var err error
		switch {
		case f.filter != nil:
			if item, err = decodeItem(rec.Item); err != nil {
				return false, fmt.Errorf("stored item %s: %w", rec.Key, err)
			}
			if !f.filter.Eval(item) {
				return true, nil
			}
			if f.decode {
				item = m.hide(item, p)
			}
		case f.decode:
			if item, err = decodeItemString(string(rec.Item), m, p); err != nil {
				return false, fmt.Errorf("stored item %s: %w", rec.Key, err)
			}
		}
		more, err := fn(item, rec.Key, f.last)
		f.last = pos
		return more, err
	}
}

// newCachedRec decodes a stored record of m for the partition cache.
func newCachedRec(m *model, rec *pipeline.Record) (cachedRec, error) {
	full, err := decodeItem(rec.Item)
	if err != nil {
		return cachedRec{}, fmt.Errorf("stored item %s: %w", rec.Key, err)
	}
	cr := cachedRec{key: rec.Key, model: m, expires: rec.Expires, visible: full}
	for k, v := range full {
		if !m.visibleAttr(k, nil) {
			if cr.extra == nil {
				cr.extra = make(Item, 2)
			}
			cr.extra[k] = v
			delete(full, k)
		}
	}
	return cr, nil
}

// visitCached checks and copies a cached record as visitor does a stored
// one.
func (f *findPlan) visitCached(cr *cachedRec, pos pipeline.Position, fn scanFunc) (bool, error) {
	if cr.model != f.m {
		return true, nil
	}
	var item Item
	switch {
	case f.filter != nil:
		item = make(Item, len(cr.visible)+len(cr.extra))
		maps.Copy(item, cr.visible)
		maps.Copy(item, cr.extra)
		if !f.filter.Eval(item) {
			return true, nil
		}
		if f.decode {
			item = f.m.hide(item, f.p)
		}
	case f.decode && f.p.Shared && !f.p.Hidden:
		item = cr.visible
	case f.decode:
		item = maps.Clone(cr.visible)
		if f.p.Hidden {
			for k, v := range cr.extra {
				if f.m.visibleAttr(k, f.p) {
					item[k] = v
				}
			}
		}
	}
	more, err := fn(item, cr.key, f.last)
	f.last = pos
	return more, err
}

// walk runs the find over a cached partition as the store would scan it:
// in sort-key order (or reverse), after the cursor, meeting the sort
// condition, not expired.
func (f *findPlan) walk(ctx context.Context, part *cachedPart, fn scanFunc) error {
	q, now := f.q, time.Now().UnixMilli()
	n := len(part.recs)
	for i := range n {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		cr := &part.recs[i]
		if q.Reverse {
			cr = &part.recs[n-1-i]
		}
		if q.After != nil {
			c := cmpPosition(cr.key, q.After)
			if (!q.Reverse && c <= 0) || (q.Reverse && c >= 0) {
				continue
			}
		}
		if !q.Sort.Matches(cr.key.SK) || (cr.expires != 0 && cr.expires <= now) {
			continue
		}
		more, err := f.visitCached(cr, pipeline.Position{Hash: cr.key.PK, Sort: cr.key.SK, Key: cr.key}, fn)
		if !more || err != nil {
			return err
		}
	}
	return nil
}

// cmpPosition orders a primary key against a cursor of the primary index.
func cmpPosition(k pipeline.Key, at *pipeline.Position) int {
	if c := strings.Compare(k.PK, at.Hash); c != 0 {
		return c
	}
	return strings.Compare(k.SK, at.Sort)
}

// findKeys lists the primary keys a find selects.
func (d *DB) findKeys(ctx context.Context, tx pipeline.ReadTx, m *model, props Item, p *Params) ([]pipeline.Key, error) {
	var keys []pipeline.Key
	err := d.scan(ctx, tx, m, props, p, false, func(_ Item, key pipeline.Key, _ pipeline.Position) (bool, error) {
		keys = append(keys, key)
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
