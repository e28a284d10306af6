package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iotod/iotod/pipeline"
)

// maxPending is how many keys' writes a transaction queues at most
// before it sends them.
const maxPending = 1024

// writeTx is a pipeline.Tx: writes are queued and sent in batches.
type writeTx struct {
	readTx
	emits []*pipeline.Change
}

// pendingWrites are a transaction's writes not yet sent: the last write
// of each key, keys in the order of their first write. The writes of one
// key touch only its row of items and its rows of entries, so those of
// different keys can be sent in any order, and a key's last write
// replaces what its earlier ones did: only the last is sent, which lets
// every Put's row go into one statement (PostgreSQL refuses to update a
// row twice in a statement).
type pendingWrites struct {
	keys []pipeline.Key
	last map[pipeline.Key]*itemRow // nil: a Delete
}

func (p *pendingWrites) empty() bool { return p == nil || len(p.keys) == 0 }

// itemRow is what a Put writes: its row of items and its index entries.
type itemRow struct {
	pk, sk, item, indexes  []byte
	model, origin          string
	wall, counter, expires int64
	owner                  *string
	entries                []pipeline.IndexEntry
}

// write queues the write of key (row nil: a Delete), replacing an
// earlier one not sent yet, and sends them all when maxPending keys are
// queued.
func (t *writeTx) write(ctx context.Context, key pipeline.Key, row *itemRow) error {
	delete(t.cache, key)
	if t.pending == nil {
		t.pending = &pendingWrites{last: make(map[pipeline.Key]*itemRow)}
	}
	p := t.pending
	if _, ok := p.last[key]; !ok {
		p.keys = append(p.keys, key)
	}
	p.last[key] = row
	if len(p.keys) >= maxPending {
		return t.flush(ctx)
	}
	return nil
}

// queueWrites adds the pending writes to b and forgets them: for each
// key, the delete of its entries (unless the transaction knows there are
// none) and, for a Delete, of its row; then one upsert of the rows of
// every Put and one insert of their entries. A key's statements come in
// that order, so b does what the writes would one after the other. The
// transaction's knowledge of entries is updated as if b were sent: if it
// is not, the transaction fails.
func (t *readTx) queueWrites(b *pgx.Batch) {
	p := t.pending
	t.pending = nil
	if p.empty() {
		return
	}
	var rows struct {
		pk, sk, item, indexes  [][]byte
		model, origin          []string
		wall, counter, expires []int64
		owner                  []*string
	}
	var entries struct{ ix, hash, sort, pk, sk [][]byte }
	for _, k := range p.keys {
		row := p.last[k]
		if t.mayHaveEntries(k) {
			b.Queue(t.s.sql.deleteEntries, []byte(k.PK), []byte(k.SK))
		}
		if row == nil {
			b.Queue(t.s.sql.deleteItem, []byte(k.PK), []byte(k.SK))
			t.hasEntries[k] = false
			continue
		}
		rows.pk, rows.sk, rows.item, rows.indexes = append(rows.pk, row.pk), append(rows.sk, row.sk), append(rows.item, row.item), append(rows.indexes, row.indexes)
		rows.model, rows.origin, rows.owner = append(rows.model, row.model), append(rows.origin, row.origin), append(rows.owner, row.owner)
		rows.wall, rows.counter, rows.expires = append(rows.wall, row.wall), append(rows.counter, row.counter), append(rows.expires, row.expires)
		for _, e := range row.entries {
			entries.ix, entries.hash, entries.sort = append(entries.ix, []byte(e.Index)), append(entries.hash, []byte(e.Hash)), append(entries.sort, []byte(e.Sort))
			entries.pk, entries.sk = append(entries.pk, row.pk), append(entries.sk, row.sk)
		}
		t.hasEntries[k] = len(row.entries) > 0
	}
	if len(rows.pk) > 0 {
		b.Queue(t.s.sql.upsert, rows.pk, rows.sk, rows.model, rows.item, rows.indexes, rows.wall, rows.counter, rows.origin, rows.expires, rows.owner)
	}
	if len(entries.pk) > 0 {
		b.Queue(t.s.sql.insertEntries, entries.ix, entries.hash, entries.sort, entries.pk, entries.sk)
	}
}

// Put writes rec and its index entries, replacing the record at its key
// and that record's entries.
func (t *writeTx) Put(ctx context.Context, rec *pipeline.Record) error {
	if err := t.s.checkRecord(rec); err != nil {
		return err
	}
	expires := rec.Expires
	if rec.Model == tombstoneModel && t.s.cfg.TombstoneTTL > 0 {
		expires = max(expires, time.Now().Add(t.s.cfg.TombstoneTTL).UnixMilli())
	}
	item := bytes.Clone(rec.Item)
	if item == nil {
		item = []byte{}
	}
	return t.write(ctx, rec.Key, &itemRow{
		pk: []byte(rec.Key.PK), sk: []byte(rec.Key.SK), item: item, indexes: encodeIndexes(rec.Indexes),
		model: rec.Model, origin: rec.Version.Origin,
		wall: rec.Version.Wall, counter: int64(rec.Version.Counter), expires: expires,
		owner: ownerOf(rec, t.s.cfg.OwnerAttribute), entries: slices.Clone(rec.Indexes),
	})
}

// Delete removes the record at key and its entries; a missing key is fine.
func (t *writeTx) Delete(ctx context.Context, key pipeline.Key) error {
	return t.write(ctx, key, nil)
}

// Emit queues ch for the outbox; it is inserted, and its Seq assigned,
// when the update commits.
func (t *writeTx) Emit(_ context.Context, ch *pipeline.Change) error {
	if ch == nil {
		return fmt.Errorf("%w: %s: emit of a nil change", pipeline.ErrInvalid, t.s.where)
	}
	for _, f := range []struct{ name, v string }{{"model", ch.Model}, {"op", string(ch.Op)}, {"origin", ch.Origin}, {"version origin", ch.Version.Origin}} {
		if !isText(f.v) {
			return fmt.Errorf("%w: %s: emit %s: the %s is not UTF-8 text without NUL", pipeline.ErrInvalid, t.s.where, ch.Key, f.name)
		}
	}
	t.emits = append(t.emits, ch)
	return nil
}
