package badger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/iotod/iotod/pipeline"
)

// trimChunk bounds the deletions of one trim transaction.
const trimChunk = 1000

// outbox is the Store's pipeline.Outbox.
type outbox struct{ s *Store }

// loadOutbox counts the kept changes and restores the highest sequence
// number: the greater of the last kept change and the trim high-water mark.
func (s *Store) loadOutbox() error {
	var depth int64
	var last, first uint64
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaOutboxHWM)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if err := item.Value(func(v []byte) error {
				if len(v) != 8 {
					return fmt.Errorf("outbox high-water mark: %w", errBadEnvelope)
				}
				s.hwm = binary.BigEndian.Uint64(v)
				return nil
			}); err != nil {
				return err
			}
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixOutbox}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			seq, err := outboxSeq(it.Item().Key())
			if err != nil {
				return err
			}
			if depth == 0 {
				first = seq
			}
			depth++
			last = max(last, seq)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("badger storage: loading outbox: %w", err)
	}
	s.seqs = newSeqTracker(max(last, s.hwm), depth)
	if depth > 0 {
		s.trimmedTo.Store(first - 1)
	} else {
		s.trimmedTo.Store(max(last, s.hwm))
	}
	return nil
}

// Read returns up to n committed changes with Seq > after, in order.
func (o outbox) Read(ctx context.Context, after uint64, n int) ([]pipeline.Change, error) {
	if err := o.s.enter(); err != nil {
		return nil, err
	}
	defer o.s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mark, _, _ := o.s.seqs.visible() // before the snapshot: all <= mark are in it
	return o.s.readOutbox(after, n, mark)
}

// readOutbox returns up to n changes with after < Seq <= mark.
func (s *Store) readOutbox(after uint64, n int, mark uint64) ([]pipeline.Change, error) {
	if n <= 0 || after >= mark {
		return nil, nil
	}
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixOutbox}})
	defer it.Close()
	var out []pipeline.Change
	for it.Seek(outboxKey(after + 1)); it.Valid() && len(out) < n; it.Next() {
		seq, err := outboxSeq(it.Item().Key())
		if err != nil {
			return nil, fmt.Errorf("badger storage: outbox read: %w", err)
		}
		if seq > mark {
			break
		}
		val, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, fmt.Errorf("badger storage: outbox read %d: %w", seq, err)
		}
		ch, err := decodeChange(seq, val)
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	return out, nil
}

// Trim deletes every change with Seq <= upTo. Changes whose transactions
// are still in flight are kept: upTo is capped at the watermark.
func (o outbox) Trim(ctx context.Context, upTo uint64) error {
	s := o.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	mark, _, _ := s.seqs.visible()
	upTo = min(upTo, mark)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := s.trimChunk(upTo)
		if errors.Is(err, badger.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("badger storage: outbox trim to %d: %w", upTo, err)
		}
		if n < trimChunk {
			s.trimmedTo.Store(max(s.trimmedTo.Load(), upTo))
			return nil
		}
	}
}

// trimChunk deletes up to trimChunk changes with Seq <= upTo, raising the
// persisted high-water mark in the same transaction. Caller holds trimMu.
func (s *Store) trimChunk(upTo uint64) (int, error) {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixOutbox}})
	var top uint64
	var keys [][]byte
	// Seek past what earlier trims deleted: their tombstones stay until
	// compaction, and walking them from the start makes trims quadratic.
	for it.Seek(outboxKey(s.trimmedTo.Load() + 1)); it.Valid() && len(keys) < trimChunk; it.Next() {
		key := it.Item().KeyCopy(nil)
		seq, err := outboxSeq(key)
		if err != nil {
			it.Close()
			return 0, err
		}
		if seq > upTo {
			break
		}
		keys = append(keys, key)
		top = seq
	}
	it.Close()
	if len(keys) == 0 {
		return 0, nil
	}
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return 0, writeErr(err)
		}
	}
	hwm := max(s.hwm, top)
	if err := txn.Set(metaOutboxHWM, binary.BigEndian.AppendUint64(nil, hwm)); err != nil {
		return 0, writeErr(err)
	}
	if err := txn.Commit(); err != nil {
		return 0, err
	}
	s.hwm = hwm
	s.trimmedTo.Store(max(s.trimmedTo.Load(), top))
	s.seqs.trimmed(int64(len(keys)))
	return len(keys), nil
}

// Stats reports the depth and bounds of the visible outbox.
func (o outbox) Stats(ctx context.Context) (pipeline.OutboxStats, error) {
	if err := o.s.enter(); err != nil {
		return pipeline.OutboxStats{}, err
	}
	defer o.s.leave()
	if err := ctx.Err(); err != nil {
		return pipeline.OutboxStats{}, err
	}
	mark, last, depth := o.s.seqs.visible()
	st := pipeline.OutboxStats{Depth: depth, Last: last}
	if depth == 0 {
		return st, nil
	}
	first, err := o.s.readOutbox(o.s.trimmedTo.Load(), 1, mark)
	if err != nil {
		return st, err
	}
	if len(first) == 1 {
		st.First = first[0].Seq
		st.Oldest = time.UnixMilli(first[0].Time)
	}
	return st, nil
}

// Notify returns a channel that receives after changes commit.
func (o outbox) Notify() <-chan struct{} { return o.s.notify }

var _ pipeline.Outbox = outbox{}
