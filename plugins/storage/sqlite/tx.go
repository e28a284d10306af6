package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// readTx is a pipeline.ReadTx on a SQLite transaction; now fixes the
// instant against which expiry is judged.
type readTx struct {
	q   queryer
	st  *bound
	now int64
}

// writeTx is a pipeline.Tx inside one update's savepoint.
type writeTx struct {
	readTx
	emits []*pipeline.Change
}

const recordColumns = "pk, sk, model, item, wall, counter, origin, expires, indexes"

// scanRecord reads one row of recordColumns.
func scanRecord(row interface{ Scan(...any) error }) (*pipeline.Record, error) {
	var pk, sk, item []byte
	var indexes []byte
	r := &pipeline.Record{}
	var counter int64
	if err := row.Scan(&pk, &sk, &r.Model, &item, &r.Version.Wall, &counter, &r.Version.Origin, &r.Expires, &indexes); err != nil {
		return nil, err
	}
	r.Key = pipeline.Key{PK: string(pk), SK: string(sk)}
	r.Version.Counter = uint32(counter)
	r.Item = item
	if err := decodeIndexes(r, indexes); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeIndexes sets r's index entries from their stored JSON.
func decodeIndexes(r *pipeline.Record, indexes []byte) error {
	if len(indexes) == 0 {
		return nil
	}
	if err := json.Unmarshal(indexes, &r.Indexes); err != nil {
		return fmt.Errorf("sqlite storage: record %s: index entries: %w", r.Key, err)
	}
	return nil
}

func (t *readTx) expired(r *pipeline.Record) bool { return r.Expires != 0 && r.Expires <= t.now }

// load returns the stored record at key, expired or not, or nil.
func (t *readTx) load(ctx context.Context, key pipeline.Key) (*pipeline.Record, error) {
	r, err := scanRecord(t.st.stmt(ctx, t.st.all.get).QueryRowContext(ctx, []byte(key.PK), []byte(key.SK)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite storage: get %s: %w", key, err)
	}
	return r, nil
}

// Get returns the record at key unless it is missing or expired.
func (t *readTx) Get(ctx context.Context, key pipeline.Key) (*pipeline.Record, error) {
	r, err := t.load(ctx, key)
	if err != nil {
		return nil, err
	}
	if r == nil || t.expired(r) {
		return nil, fmt.Errorf("sqlite storage: get %s: %w", key, pipeline.ErrNotFound)
	}
	return r, nil
}

// Put writes rec and its index entries, replacing the record at its key
// and that record's entries.
func (t *writeTx) Put(ctx context.Context, rec *pipeline.Record) error {
	if err := checkRecord(rec); err != nil {
		return err
	}
	var indexes []byte
	if len(rec.Indexes) > 0 {
		var err error
		if indexes, err = json.Marshal(rec.Indexes); err != nil {
			return fmt.Errorf("sqlite storage: put %s: %w", rec.Key, err)
		}
	}
	pk, sk := []byte(rec.Key.PK), []byte(rec.Key.SK)
	item := rec.Item
	if item == nil {
		item = []byte{}
	}
	if _, err := t.st.stmt(ctx, t.st.all.put).ExecContext(ctx,
		pk, sk, rec.Model, item, rec.Version.Wall, int64(rec.Version.Counter), rec.Version.Origin, rec.Expires, nullable(indexes)); err != nil {
		return fmt.Errorf("sqlite storage: put %s: %w", rec.Key, writeErr(err))
	}
	if _, err := t.st.stmt(ctx, t.st.all.delEntries).ExecContext(ctx, pk, sk); err != nil {
		return fmt.Errorf("sqlite storage: put %s: %w", rec.Key, writeErr(err))
	}
	for _, e := range rec.Indexes {
		if _, err := t.st.stmt(ctx, t.st.all.insEntry).ExecContext(ctx,
			[]byte(e.Index), []byte(e.Hash), []byte(e.Sort), pk, sk); err != nil {
			return fmt.Errorf("sqlite storage: put %s: index %s: %w", rec.Key, e.Index, writeErr(err))
		}
	}
	return nil
}

// nullable is b, or nil for a NULL when empty.
func nullable(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Delete removes the record at key and its entries; a missing key is fine.
func (t *writeTx) Delete(ctx context.Context, key pipeline.Key) error {
	pk, sk := []byte(key.PK), []byte(key.SK)
	if _, err := t.st.stmt(ctx, t.st.all.delRecord).ExecContext(ctx, pk, sk); err != nil {
		return fmt.Errorf("sqlite storage: delete %s: %w", key, writeErr(err))
	}
	if _, err := t.st.stmt(ctx, t.st.all.delEntries).ExecContext(ctx, pk, sk); err != nil {
		return fmt.Errorf("sqlite storage: delete %s: %w", key, writeErr(err))
	}
	return nil
}

// Emit queues ch for the outbox; its Seq is set when the update's
// savepoint is released.
func (t *writeTx) Emit(_ context.Context, ch *pipeline.Change) error {
	if ch == nil {
		return fmt.Errorf("sqlite storage: emit: nil change: %w", pipeline.ErrInvalid)
	}
	t.emits = append(t.emits, ch)
	return nil
}

// writeEmits appends the update's changes to the outbox, in order: the
// table's AUTOINCREMENT key is each change's Seq.
func (t *writeTx) writeEmits(ctx context.Context) error {
	for _, ch := range t.emits {
		if ch.Time == 0 {
			ch.Time = t.now
		}
		var item any
		if ch.Item != nil {
			item = []byte(ch.Item)
		}
		var seq int64
		err := t.st.stmt(ctx, t.st.all.emit).QueryRowContext(ctx,
			ch.Model, string(ch.Op), []byte(ch.Key.PK), []byte(ch.Key.SK), item, ch.Version.Wall, int64(ch.Version.Counter), ch.Version.Origin, ch.Origin, ch.Time).Scan(&seq)
		if err != nil {
			return fmt.Errorf("sqlite storage: outbox: %w", writeErr(err))
		}
		ch.Seq = uint64(seq)
	}
	return nil
}

// checkRecord refuses a record no store can place.
func checkRecord(rec *pipeline.Record) error {
	if err := rec.Check(); err != nil {
		return fmt.Errorf("sqlite storage: put %w", err)
	}
	return nil
}
