package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// openRaw opens a plain badger database with the same memory sizes as the
// iotod store's defaults, for the baselines.
func openRaw(dir string, syncWrites bool) (*badgerdb.DB, error) {
	opts := badgerdb.DefaultOptions(dir).
		WithSyncWrites(syncWrites).
		WithLogger(nil).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithMetricsEnabled(false)
	db, err := badgerdb.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("raw badger %s: %w", dir, err)
	}
	return db, nil
}

// rawKey mirrors the item's primary key.
func rawKey(dev string, id int) []byte {
	return fmt.Appendf(nil, "bench#%s\x00bench#%010d", dev, id)
}

// rawSingleWrites runs one transaction per write, many writers, SyncWrites:
// the durable storage limit without group commit.
func rawSingleWrites(ctx context.Context, dir string, syncWrites bool, o DBOptions, value []byte) (float64, Dist, error) {
	db, err := openRaw(filepath.Clean(dir), syncWrites)
	if err != nil {
		return 0, Dist{}, err
	}
	defer db.Close()
	return runWriters(ctx, o.Writers, o.Duration, func(w, i int) error {
		return db.Update(func(txn *badgerdb.Txn) error {
			return txn.Set(rawKey(fmt.Sprintf("w%d", w), i), value)
		})
	})
}

// rawBatchedWrites writes large transactions from one writer without
// SyncWrites: the fastest badger goes.
func rawBatchedWrites(ctx context.Context, dir string, o DBOptions, value []byte) (float64, error) {
	db, err := openRaw(dir, false)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	rate, _, err := runWriters(ctx, 1, o.Duration, func(_, i int) error {
		wb := db.NewWriteBatch()
		defer wb.Cancel()
		for j := 0; j < rawBatch; j++ {
			if err := wb.Set(rawKey("w0", i*rawBatch+j), value); err != nil {
				return err
			}
		}
		return wb.Flush()
	})
	return rate * rawBatch, err
}

const rawBatch = 1000

// rawCreateTxns runs what one iotod create asks of badger, with nothing
// of iotod around it: one transaction per write from many writers without
// SyncWrites, that reads the key (a create must find it absent) and sets
// the item and an outbox entry twice its size (the change carries the
// item). It is the ceiling of a design with a badger transaction per
// write on this machine.
func rawCreateTxns(ctx context.Context, dir string, o DBOptions, value []byte) (float64, error) {
	db, err := openRaw(dir, false)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var seq atomic.Uint64
	change := append(append([]byte{}, value...), value...)
	rate, _, err := runWriters(ctx, o.Writers, o.Duration, func(w, i int) error {
		return db.Update(func(txn *badgerdb.Txn) error {
			k := rawKey(fmt.Sprintf("w%d", w), i)
			if _, err := txn.Get(k); !errors.Is(err, badgerdb.ErrKeyNotFound) {
				return fmt.Errorf("raw create %s: %v", k, err)
			}
			if err := txn.Set(k, value); err != nil {
				return err
			}
			return txn.Set(binary.BigEndian.AppendUint64([]byte("o/"), seq.Add(1)), change)
		})
	})
	return rate, err
}
