package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/iotod/iotod/pipeline"
)

// statements are the store's fixed SQL, qualified by its schema.
type statements struct {
	get, getMany, upsert, deleteItem, deleteEntries, insertEntries, insertOutbox string
}

// recordColumns are what scanRecord reads, prefixed by the items alias r.
const recordColumns = "r.pk, r.sk, r.model, r.item, r.indexes, r.wall, r.counter, r.origin, r.expires"

// itemColumns are recordColumns of the items alias i.
const itemColumns = "i.pk, i.sk, i.model, i.item, i.indexes, i.wall, i.counter, i.origin, i.expires"

func newStatements(n names) statements {
	return statements{
		get: "SELECT " + recordColumns + " FROM " + n.items + " r WHERE r.pk = $1 AND r.sk = $2",
		// One primary-key lookup per key (a nested loop over the keys):
		// a join would be planned as a hash join over a scan of the whole
		// table below about 100k rows, and a scan takes a serializable read
		// lock on the whole table, which every concurrent insert conflicts
		// with. LIMIT 1 keeps the planner from rewriting the lateral
		// subquery into such a join; seqScanOff keeps it off a sequential
		// scan on small tables.
		getMany: "SELECT " + recordColumns + " FROM unnest($1::bytea[], $2::bytea[]) AS k(pk, sk) CROSS JOIN LATERAL (SELECT " +
			itemColumns + " FROM " + n.items + " i WHERE i.pk = k.pk AND i.sk = k.sk LIMIT 1) r",
		// Many rows per statement, one array per column; a key at most
		// once (PostgreSQL refuses to update a row twice in a statement).
		upsert: "INSERT INTO " + n.items + " (pk, sk, model, item, indexes, wall, counter, origin, expires, owner) " +
			"SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::bytea[], $5::bytea[], $6::bigint[], $7::bigint[], " +
			"$8::text[], $9::bigint[], $10::text[]) ON CONFLICT (pk, sk) DO UPDATE SET " +
			"model = EXCLUDED.model, item = EXCLUDED.item, indexes = EXCLUDED.indexes, wall = EXCLUDED.wall, " +
			"counter = EXCLUDED.counter, origin = EXCLUDED.origin, expires = EXCLUDED.expires, owner = EXCLUDED.owner",
		deleteItem:    "DELETE FROM " + n.items + " WHERE pk = $1 AND sk = $2",
		deleteEntries: "DELETE FROM " + n.entries + " WHERE pk = $1 AND sk = $2",
		insertEntries: "INSERT INTO " + n.entries + " (ix, hash, sort, pk, sk) " +
			"SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[]) ON CONFLICT DO NOTHING",
		insertOutbox: "INSERT INTO " + n.outbox + " (model, op, pk, sk, item, wall, counter, vorigin, origin, time) " +
			"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq",
	}
}

// readTx is a pipeline.ReadTx on a PostgreSQL transaction; now fixes the
// instant against which expiry is judged.
type readTx struct {
	s   *Store
	q   pgx.Tx
	now int64
	// pending are the writes not yet sent (a writeTx's); every read sends
	// them first, so a transaction reads its own writes.
	pending *pendingWrites
	// cache holds what Prefetch read, by key (nil: missing), until the
	// key's Get, Put or Delete.
	cache map[pipeline.Key]*pipeline.Record
	// hasEntries tells, by key, whether the key's record has rows in
	// entries, as far as this transaction knows (a writeTx's; nil in a
	// View): false when it read the key missing or its record without
	// index entries, or its last write left none; absent when unknown.
	// A write deletes the entries of its key unless known to be none.
	hasEntries map[pipeline.Key]bool
}

func newReadTx(s *Store, q pgx.Tx) *readTx {
	return &readTx{s: s, q: q, now: nowMillis()}
}

// flush sends the pending writes in one round trip.
func (t *readTx) flush(ctx context.Context) error {
	if t.pending.empty() {
		return nil
	}
	b := &pgx.Batch{}
	t.queueWrites(b)
	return t.send(ctx, b, "write")
}

// send sends the statements of b in one round trip.
func (t *readTx) send(ctx context.Context, b *pgx.Batch, what string) error {
	if t.s.sending != nil {
		t.s.sending(b)
	}
	if err := t.q.SendBatch(ctx, b).Close(); err != nil {
		return t.s.fail(what, err)
	}
	return nil
}

// saw notes, in a writeTx, whether the record read at key (nil: missing)
// has index entries. It may have expired: its entries are there until
// the sweep.
func (t *readTx) saw(key pipeline.Key, r *pipeline.Record) {
	if t.hasEntries != nil {
		t.hasEntries[key] = r != nil && len(r.Indexes) > 0
	}
}

// mayHaveEntries reports whether the record at key may have rows in
// entries, as far as the transaction knows.
func (t *readTx) mayHaveEntries(key pipeline.Key) bool {
	has, known := t.hasEntries[key]
	return has || !known
}

// scanRecord reads one row of recordColumns.
func scanRecord(row pgx.Row) (*pipeline.Record, error) {
	var pk, sk, item, indexes []byte
	var counter int64
	r := &pipeline.Record{}
	if err := row.Scan(&pk, &sk, &r.Model, &item, &indexes, &r.Version.Wall, &counter, &r.Version.Origin, &r.Expires); err != nil {
		return nil, err
	}
	r.Key = pipeline.Key{PK: string(pk), SK: string(sk)}
	r.Version.Counter = uint32(counter)
	r.Item = item
	if r.Item == nil {
		r.Item = []byte{}
	}
	var err error
	if r.Indexes, err = decodeIndexes(indexes); err != nil {
		return nil, fmt.Errorf("record %s: index entries: %w", r.Key, err)
	}
	return r, nil
}

func (t *readTx) expired(r *pipeline.Record) bool { return r.Expires != 0 && r.Expires <= t.now }

// Get returns the record at key unless it is missing or expired.
func (t *readTx) Get(ctx context.Context, key pipeline.Key) (*pipeline.Record, error) {
	r, cached := t.cache[key]
	if cached {
		delete(t.cache, key)
	} else {
		if err := t.flush(ctx); err != nil {
			return nil, err
		}
		var err error
		r, err = scanRecord(t.q.QueryRow(ctx, t.s.sql.get, []byte(key.PK), []byte(key.SK)))
		if errors.Is(err, pgx.ErrNoRows) {
			r = nil
		} else if err != nil {
			return nil, t.s.fail("get "+key.String(), err)
		}
		t.saw(key, r)
	}
	if r == nil || t.expired(r) {
		return nil, fmt.Errorf("%s: get %s: %w", t.s.where, key, pipeline.ErrNotFound)
	}
	return r, nil
}

// Prefetch reads the records at keys in one query (pipeline.Prefetcher);
// the Gets of those keys that follow are answered from what it read.
func (t *readTx) Prefetch(ctx context.Context, keys []pipeline.Key) error {
	if len(keys) == 0 {
		return nil
	}
	if err := t.flush(ctx); err != nil {
		return err
	}
	pks, sks := make([][]byte, len(keys)), make([][]byte, len(keys))
	for i, k := range keys {
		pks[i], sks[i] = []byte(k.PK), []byte(k.SK)
	}
	rows, err := t.q.Query(ctx, t.s.sql.getMany, pks, sks)
	if err != nil {
		return t.s.fail("prefetch", err)
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*pipeline.Record, error) { return scanRecord(row) })
	if err != nil {
		return t.s.fail("prefetch", err)
	}
	if t.cache == nil {
		t.cache = make(map[pipeline.Key]*pipeline.Record, len(keys))
	}
	for _, k := range keys {
		t.cache[k] = nil
	}
	for _, r := range found {
		t.cache[r.Key] = r
	}
	for _, k := range keys {
		t.saw(k, t.cache[k])
	}
	return nil
}
