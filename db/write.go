package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	json "github.com/goccy/go-json"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// txWriter applies prepared writes inside one storage transaction and
// collects the events to publish once it commits.
type txWriter struct {
	d      *DB
	tx     pipeline.Tx
	now    time.Time
	events []Event
}

// loadItem reads the item at key, or nil.
func loadItem(ctx context.Context, tx pipeline.ReadTx, key pipeline.Key) (Item, *pipeline.Record, error) {
	rec, err := tx.Get(ctx, key)
	if errors.Is(err, pipeline.ErrNotFound) {
		return nil, nil, nil
	}
	if err == nil && rec.Model == TombstoneModel {
		return nil, rec, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", key, err)
	}
	item, err := decodeItem(rec.Item)
	if err != nil {
		return nil, nil, fmt.Errorf("stored item %s: %w", key, err)
	}
	return item, rec, nil
}

// put applies one prepared create, update or upsert.
func (w *txWriter) put(ctx context.Context, pr *prepared) (Item, error) {
	m, p := pr.m, pr.p
	old, rec, err := loadItem(ctx, w.tx, pr.key)
	if err != nil {
		return nil, err
	}
	if old != nil && rec.Model != m.Name {
		return nil, fmt.Errorf("%w: %s key %s holds a %s item", pipeline.ErrExists, m.Name, pr.key, rec.Model)
	}
	exists := defaultExists(pr.op)
	if p.Exists != nil || pr.op == pipeline.OpUpsert {
		exists = p.Exists
	}
	switch {
	case exists != nil && *exists && old == nil:
		return nil, fmt.Errorf("%w: %s %s does not exist", pipeline.ErrConditionFailed, m.Name, pr.key)
	case exists != nil && !*exists && old != nil:
		return nil, fmt.Errorf("%w: %s %s", pipeline.ErrExists, m.Name, pr.key)
	}
	var item Item
	if old == nil || pr.op == pipeline.OpCreate {
		item = Item{}
		if pr.op != pipeline.OpCreate {
			if err := m.generate(pr.in); err != nil {
				return nil, err
			}
		}
		m.applyDefaults(item)
		item = m.merge(item, pr.in, p)
	} else {
		item = m.merge(old, pr.in, p)
	}
	m.stamp(item, old == nil, w.now)
	item[m.typeField] = m.Name
	if err := m.computeTemplates(item, pr.key); err != nil {
		return nil, err
	}
	if err := m.checkRequired(item); err != nil {
		return nil, err
	}
	op := pr.op
	if op == pipeline.OpUpsert && old == nil {
		op = pipeline.OpCreate
	}
	return item, w.commitItem(ctx, m, op, pr.key, old, item)
}

func defaultExists(op pipeline.Op) *bool {
	t, f := true, false
	switch op {
	case pipeline.OpCreate:
		return &f
	case pipeline.OpUpdate:
		return &t
	}
	return nil
}

// commitItem stamps the version, encodes and stores item, emits its change.
func (w *txWriter) commitItem(ctx context.Context, m *model, op pipeline.Op, key pipeline.Key, old, item Item) error {
	v := w.d.clock.Next()
	item[VersionAttr] = v.String()
	data, err := json.Marshal(item)
	if err != nil {
		return fmt.Errorf("%w: %s %s: encode: %v", pipeline.ErrInvalid, m.Name, key, err)
	}
	if len(data) > MaxItemSize {
		return fmt.Errorf("%w: %s %s is %d bytes, over the %d byte item limit", pipeline.ErrTooLarge, m.Name, key, len(data), MaxItemSize)
	}
	rec := &pipeline.Record{Key: key, Model: m.Name, Item: data, Indexes: m.indexEntries(item), Version: v, Expires: m.expires(item)}
	if err := w.tx.Put(ctx, rec); err != nil {
		return fmt.Errorf("store %s %s: %w", m.Name, key, err)
	}
	if err := w.emit(ctx, m, op, key, data, v); err != nil {
		return err
	}
	w.events = append(w.events, Event{Model: m.Name, Op: op, Key: key, Old: old, New: item, Version: v, Origin: w.d.site})
	return nil
}

// emit records a local write's change: in the outbox, when its model
// replicates from here, and in the queue of each local trigger.
func (w *txWriter) emit(ctx context.Context, m *model, op pipeline.Op, key pipeline.Key, data []byte, v pipeline.Version) error {
	triggers := w.d.localTriggerNames()
	if (!m.emits || w.d.captured) && len(triggers) == 0 {
		return nil
	}
	ch := &pipeline.Change{Model: m.Name, Op: op, Key: key, Item: data, Version: v, Origin: w.d.site, Time: w.now.UnixMilli()}
	if m.emits && !w.d.captured {
		if err := w.tx.Emit(ctx, ch); err != nil {
			return fmt.Errorf("outbox %s %s: %w", m.Name, key, err)
		}
	}
	return w.queueTriggers(ctx, triggers, ch)
}

// remove deletes the item at key; it reports whether one was there.
func (w *txWriter) remove(ctx context.Context, m *model, key pipeline.Key, p *Params) (bool, error) {
	old, rec, err := loadItem(ctx, w.tx, key)
	if err != nil {
		return false, err
	}
	if old == nil || rec.Model != m.Name {
		if p != nil && p.Exists != nil && *p.Exists {
			return false, fmt.Errorf("%w: %s %s does not exist", pipeline.ErrConditionFailed, m.Name, key)
		}
		return false, nil
	}
	v := w.d.clock.Next()
	// A tombstone, not a delete: a late replicated update older than this
	// remove must not bring the item back.
	tomb := tombstone(m.Name, "", key, v, w.now)
	if err := w.tx.Put(ctx, tomb); err != nil {
		return false, fmt.Errorf("remove %s %s: %w", m.Name, key, err)
	}
	if err := w.emit(ctx, m, pipeline.OpRemove, key, nil, v); err != nil {
		return false, err
	}
	w.events = append(w.events, Event{Model: m.Name, Op: pipeline.OpRemove, Key: key, Old: old, Version: v, Origin: w.d.site})
	return true, nil
}

func (m *model) applyDefaults(item Item) {
	for _, name := range m.FieldNames {
		if f := m.Fields[name]; f.Default != nil {
			if c, err := m.castValue(name, f, f.Default, false); err == nil {
				item[name] = c
			}
		}
	}
}

// stamp sets the created and updated timestamps the schema asks for.
func (m *model) stamp(item Item, isNew bool, now time.Time) {
	if f := m.Fields[m.createdField]; f != nil && isNew && m.timestamps != schema.TimestampsUpdate {
		item[m.createdField] = m.dateValue(f, now)
	}
	if f := m.Fields[m.updatedField]; f != nil && m.timestamps != schema.TimestampsCreate {
		item[m.updatedField] = m.dateValue(f, now)
	}
}

// computeTemplates recomputes every value template from the merged item,
// so derived attributes (index keys) follow their inputs. The primary key
// stays as addressed.
func (m *model) computeTemplates(item Item, key pipeline.Key) error {
	for _, f := range m.templated {
		switch f.Name {
		case m.primary.Hash:
			item[f.Name] = key.PK
			continue
		case m.primary.Sort:
			item[f.Name] = key.SK
			continue
		}
		if v, ok := m.expand(f, item); ok {
			item[f.Name] = v
		} else {
			delete(item, f.Name) // OneTable omits an attribute whose template cannot be filled
		}
	}
	return nil
}

func (m *model) checkRequired(item Item) error {
	for _, name := range m.FieldNames {
		if f := m.Fields[name]; f.Required && item[name] == nil {
			return invalid(m.Name+"."+name, "required")
		}
	}
	return nil
}

// indexEntries places the item in each secondary index whose key
// attributes it has (indexes are sparse, as in DynamoDB).
func (m *model) indexEntries(item Item) []pipeline.IndexEntry {
	var out []pipeline.IndexEntry
	for _, ix := range m.secondary {
		h, ok := item[m.hashAttr(ix)]
		if !ok || h == nil {
			continue
		}
		e := pipeline.IndexEntry{Index: ix.Name, Hash: scalarString(h)}
		if ix.Sort != "" {
			s, ok := item[ix.Sort]
			if !ok || s == nil {
				continue
			}
			e.Sort = scalarString(s)
		}
		out = append(out, e)
	}
	return out
}

// expires reads the TTL attribute (epoch seconds) as Unix milliseconds.
func (m *model) expires(item Item) int64 {
	if m.ttlField == "" {
		return 0
	}
	n, ok := toNumber(item[m.ttlField])
	if !ok {
		return 0
	}
	secs, err := n.Int64()
	if err != nil {
		f, _ := n.Float64()
		secs = int64(f)
	}
	return secs * 1000
}
