package badger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/iotod/iotod/pipeline"
)

// readTx is a pipeline.ReadTx on a badger transaction. now fixes the
// instant against which expiry is judged.
type readTx struct {
	txn *badger.Txn
	now int64
}

// writeTx is a pipeline.Tx. It must not be used after fn returns.
type writeTx struct {
	readTx
	emits []*pipeline.Change
	dirty bool
	// bigValue is the size from which badger puts a value in the value
	// log; inVlog says whether this transaction wrote such a value.
	bigValue int
	inVlog   bool
	// seen is what the last load of this transaction found at seenKey
	// (nil: absent), while no write has followed it: a write's Put after
	// the caller's Get of the same key (every create, update and apply)
	// then reads the store once.
	seen     *pipeline.Record
	seenKey  []byte
	seenSure bool
}

func (t *readTx) expired(rec *pipeline.Record) bool {
	return rec.Expires != 0 && rec.Expires <= t.now
}

// Get returns the record at key unless it is missing or expired.
func (t *readTx) Get(_ context.Context, key pipeline.Key) (*pipeline.Record, error) {
	rec, err := t.load(key)
	if err != nil {
		return nil, err
	}
	if rec == nil || t.expired(rec) {
		return nil, fmt.Errorf("badger storage: get %s: %w", key, pipeline.ErrNotFound)
	}
	return rec, nil
}

// load returns the stored record at key, expired or not, or nil.
func (t *readTx) load(key pipeline.Key) (*pipeline.Record, error) {
	item, err := t.txn.Get(recordKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("badger storage: get %s: %w", key, err)
	}
	val, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("badger storage: get %s: %w", key, err)
	}
	return decodeRecord(key, val)
}

// Get returns the record at key unless it is missing or expired,
// remembering what it found for a Put of the same key.
func (t *writeTx) Get(ctx context.Context, key pipeline.Key) (*pipeline.Record, error) {
	rec, err := t.loadOnce(key)
	if err != nil {
		return nil, err
	}
	if rec == nil || t.expired(rec) {
		return nil, fmt.Errorf("badger storage: get %s: %w", key, pipeline.ErrNotFound)
	}
	cp := *rec
	cp.Indexes = append([]pipeline.IndexEntry(nil), rec.Indexes...)
	return &cp, nil
}

// loadOnce is load, answered from the last load when nothing was written
// since and the key is the same.
func (t *writeTx) loadOnce(key pipeline.Key) (*pipeline.Record, error) {
	rk := recordKey(key)
	if t.seenSure && bytes.Equal(rk, t.seenKey) {
		return t.seen, nil
	}
	rec, err := t.load(key)
	if err != nil {
		return nil, err
	}
	t.seen, t.seenKey, t.seenSure = rec, rk, true
	return rec, nil
}

// Put writes rec and its index and expiry entries, removing the entries of
// the record it replaces.
func (t *writeTx) Put(_ context.Context, rec *pipeline.Record) error {
	if err := checkRecord(rec); err != nil {
		return err
	}
	rk := recordKey(rec.Key)
	if len(rk) > maxKeySize {
		return fmt.Errorf("badger storage: put %s: key over %d bytes: %w", rec.Key, maxKeySize, pipeline.ErrTooLarge)
	}
	newIdx := make([][]byte, len(rec.Indexes))
	for i, e := range rec.Indexes {
		newIdx[i] = indexKey(e, rec.Key)
		if len(newIdx[i]) > maxKeySize {
			return fmt.Errorf("badger storage: put %s: index %s key over %d bytes: %w", rec.Key, e.Index, maxKeySize, pipeline.ErrTooLarge)
		}
	}
	old, err := t.loadOnce(rec.Key)
	if err != nil {
		return err
	}
	var oldIdx [][]byte
	if old != nil {
		for _, e := range old.Indexes {
			k := indexKey(e, old.Key)
			if !containsKey(newIdx, k) {
				if err := t.del(k); err != nil {
					return err
				}
			}
			oldIdx = append(oldIdx, k)
		}
		if old.Expires != 0 && old.Expires != rec.Expires {
			if err := t.del(expiryKey(old.Expires, old.Key)); err != nil {
				return err
			}
		}
	}
	if err := t.set(rk, encodeRecord(rec)); err != nil {
		return err
	}
	for _, k := range newIdx {
		if !containsKey(oldIdx, k) {
			if err := t.set(k, nil); err != nil {
				return err
			}
		}
	}
	if rec.Expires != 0 && (old == nil || old.Expires != rec.Expires) {
		return t.set(expiryKey(rec.Expires, rec.Key), nil)
	}
	return nil
}

// Delete removes the record at key and its entries; a missing key is fine.
func (t *writeTx) Delete(_ context.Context, key pipeline.Key) error {
	old, err := t.loadOnce(key)
	if err != nil || old == nil {
		return err
	}
	return t.remove(old)
}

// remove deletes a stored record with its index and expiry entries.
func (t *writeTx) remove(rec *pipeline.Record) error {
	for _, e := range rec.Indexes {
		if err := t.del(indexKey(e, rec.Key)); err != nil {
			return err
		}
	}
	if rec.Expires != 0 {
		if err := t.del(expiryKey(rec.Expires, rec.Key)); err != nil {
			return err
		}
	}
	return t.del(recordKey(rec.Key))
}

// Emit queues ch for the outbox; its Seq is set at commit.
func (t *writeTx) Emit(_ context.Context, ch *pipeline.Change) error {
	if ch == nil {
		return fmt.Errorf("badger storage: emit: nil change: %w", pipeline.ErrInvalid)
	}
	t.emits = append(t.emits, ch)
	t.dirty = true
	return nil
}

// writeEmits numbers the queued changes from first and writes them.
func (t *writeTx) writeEmits(first uint64) error {
	now := time.Now().UnixMilli()
	for i, ch := range t.emits {
		ch.Seq = first + uint64(i)
		if ch.Time == 0 {
			ch.Time = now
		}
		if err := t.set(outboxKey(ch.Seq), encodeChange(ch)); err != nil {
			return err
		}
	}
	return nil
}

func (t *writeTx) set(key, val []byte) error {
	t.dirty, t.seenSure = true, false
	if t.bigValue > 0 && len(val) >= t.bigValue {
		t.inVlog = true
	}
	if err := t.txn.Set(key, val); err != nil {
		return writeErr(err)
	}
	return nil
}

func (t *writeTx) del(key []byte) error {
	t.dirty, t.seenSure = true, false
	if err := t.txn.Delete(key); err != nil {
		return writeErr(err)
	}
	return nil
}

func writeErr(err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return fmt.Errorf("badger storage: %w: %w", pipeline.ErrTxTooLarge, err)
	}
	return fmt.Errorf("badger storage: write: %w", err)
}

// checkRecord rejects records the layout cannot hold.
func checkRecord(rec *pipeline.Record) error {
	if err := rec.Check(); err != nil {
		return fmt.Errorf("badger storage: put %w", err)
	}
	return nil
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, c := range keys {
		if bytes.Equal(c, k) {
			return true
		}
	}
	return false
}

var (
	_ pipeline.ReadTx = (*readTx)(nil)
	_ pipeline.Tx     = (*writeTx)(nil)
)
