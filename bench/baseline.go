package bench

import (
	"context"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/iotod/iotod/plugins/storage/badger"
)

// baseline is the raw engine under a store, measured beside it in the
// same run: the same work without iotod.
type baseline struct {
	name     string // "raw badger"
	syncWord string // how the engine names a durable commit
	// singleWrites: one transaction per write from o.Writers writers.
	singleWrites func(ctx context.Context, dir string, sync bool, o DBOptions, value []byte) (float64, Dist, error)
	// batchedWrites: rawBatch-key transactions from one writer, keys/s.
	batchedWrites func(ctx context.Context, dir string, o DBOptions, value []byte) (float64, error)
	// createTxns: what a create asks of the engine, one transaction each.
	createTxns func(ctx context.Context, dir string, o DBOptions, value []byte) (float64, error)
	// loadReads loads n values under the bench items' keys.
	loadReads func(dir string, n int, value []byte) (rawReads, error)
}

// rawReads reads what loadReads loaded: value j, and the partition p's
// values in key order.
type rawReads struct {
	get   func(j int) error
	scan  func(p int) error
	close func() error
}

// baselineFor is the baseline of store ("" is badger).
func baselineFor(store string) (baseline, error) {
	switch store {
	case "", badger.TypeName:
		return badgerBaseline, nil
	case "sqlite":
		return rawSQLiteBaseline() // raw_sqlite.go, or raw_nosqlite.go in a 64-bit device build
	}
	return baseline{}, fmt.Errorf("bench db: store %q: want badger or sqlite", store)
}

var badgerBaseline = baseline{
	name: "raw badger", syncWord: "SyncWrites",
	singleWrites: rawSingleWrites, batchedWrites: rawBatchedWrites, createTxns: rawCreateTxns,
	loadReads: func(dir string, n int, value []byte) (rawReads, error) {
		raw, err := openRaw(dir, false)
		if err != nil {
			return rawReads{}, err
		}
		wb := raw.NewWriteBatch()
		for j := 0; j < n; j++ {
			if err := wb.Set(rawKey(partKey(j), j), value); err != nil {
				return rawReads{}, err
			}
		}
		if err := wb.Flush(); err != nil {
			return rawReads{}, err
		}
		return rawReads{
			get: func(j int) error {
				return raw.View(func(txn *badgerdb.Txn) error {
					it, err := txn.Get(rawKey(partKey(j), j))
					if err != nil {
						return err
					}
					_, err = it.ValueCopy(nil)
					return err
				})
			},
			scan: func(p int) error {
				return raw.View(func(txn *badgerdb.Txn) error {
					prefix := fmt.Appendf(nil, "bench#%s\x00", partKey(p*partition))
					it := txn.NewIterator(badgerdb.IteratorOptions{PrefetchValues: true, PrefetchSize: partition, Prefix: prefix})
					defer it.Close()
					c := 0
					for it.Seek(prefix); it.Valid(); it.Next() {
						if _, err := it.Item().ValueCopy(nil); err != nil {
							return err
						}
						c++
					}
					if c != partition {
						return fmt.Errorf("raw scan found %d", c)
					}
					return nil
				})
			},
			close: raw.Close,
		}, nil
	},
}
