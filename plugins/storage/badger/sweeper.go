package badger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// sweepBatch bounds the records one sweep transaction deletes.
const sweepBatch = 256

// startSweeper runs sweep every SweepInterval until Close.
func (s *Store) startSweeper() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopSweep = cancel
	s.sweepDone = make(chan struct{})
	go func() {
		defer close(s.sweepDone)
		tick := time.NewTicker(s.cfg.SweepInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if _, err := s.sweep(ctx, time.Now().UnixMilli()); err != nil && ctx.Err() == nil {
				s.log.Warn("badger storage: TTL sweep failed", "path", s.cfg.Path, "error", err)
			}
			s.collectValueLog(ctx)
		}
	}()
}

// sweep deletes the records that expired at or before now, with their
// index and expiry entries, and returns how many it deleted.
func (s *Store) sweep(ctx context.Context, now int64) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, err := s.sweepBatch(now)
		if errors.Is(err, badger.ErrConflict) {
			continue // a writer touched one of them; look again
		}
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
	return total, ctx.Err()
}

func (s *Store) sweepBatch(now int64) (int, error) {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	t := &writeTx{readTx: readTx{txn: txn, now: now}}
	var expiries [][]byte
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixExpiry}})
	for it.Rewind(); it.Valid() && len(expiries) < sweepBatch; it.Next() {
		key := it.Item().KeyCopy(nil)
		if len(key) < 9 || int64(binary.BigEndian.Uint64(key[1:9])) > now {
			break
		}
		expiries = append(expiries, key)
	}
	it.Close()
	for _, key := range expiries {
		k, _, err := readKey(key[9:])
		if err != nil {
			return 0, fmt.Errorf("expiry key %q: %w", key, err)
		}
		rec, err := t.load(k)
		if err != nil {
			return 0, err
		}
		if rec != nil && t.expired(rec) {
			if err := t.remove(rec); err != nil {
				return 0, err
			}
		}
		// A stale entry (record gone or re-put with another expiry).
		if err := t.del(key); err != nil {
			return 0, err
		}
	}
	if len(expiries) == 0 {
		return 0, nil
	}
	if err := txn.Commit(); err != nil {
		return 0, fmt.Errorf("committing sweep: %w", err)
	}
	return len(expiries), nil
}

// collectValueLog reclaims value log space held by overwritten large values.
func (s *Store) collectValueLog(ctx context.Context) {
	for range 4 {
		if ctx.Err() != nil {
			return
		}
		err := s.db.RunValueLogGC(0.5)
		if err == nil {
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
			s.log.Warn("badger storage: value log GC failed", "path", s.cfg.Path, "error", err)
		}
		return
	}
}
