package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

const partition = 100 // items per hash key: one prefix find returns them all

// readBench measures P9: gets/s and 100-item prefix finds over ReadItems
// items, and memory per stored item, beside raw badger gets and iterations.
func readBench(ctx context.Context, dir, rawDir string, o DBOptions, value []byte) error {
	w := o.Out
	n := o.ReadItems
	debug.FreeOSMemory()
	rssBefore, anonBefore := rssBytes(), anonRSSBytes()
	b, err := openIotod(ctx, dir, "async")
	if err != nil {
		return err
	}
	defer b.close(ctx)
	start := time.Now()
	const batch = 1000
	for i := 0; i < n; i += batch {
		ops := make([]db.WriteOp, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			ops = append(ops, db.WriteOp{Op: pipeline.OpCreate, Model: "Bench", Item: benchItem(fmt.Sprintf("p%d", j/partition), j)})
		}
		if _, err := b.db.Transact(ctx, ops); err != nil {
			return fmt.Errorf("P9 load: %w", err)
		}
		if err := b.store.Outbox().Trim(ctx, uint64(min(i+batch, n))); err != nil {
			return fmt.Errorf("P9 load trim: %w", err)
		}
	}
	load := time.Since(start)
	debug.FreeOSMemory()
	rssAfter, anonAfter := rssBytes(), anonRSSBytes()

	raw, err := openRaw(rawDir, false)
	if err != nil {
		return err
	}
	defer raw.Close()
	wb := raw.NewWriteBatch()
	for j := 0; j < n; j++ {
		if err := wb.Set(rawKey(fmt.Sprintf("p%d", j/partition), j), value); err != nil {
			return err
		}
	}
	if err := wb.Flush(); err != nil {
		return err
	}

	readers := 2 * runtime.NumCPU()
	getRate, getDist, err := runWriters(ctx, readers, o.Duration, func(_, _ int) error {
		j := rand.IntN(n)
		_, err := b.db.Get(ctx, "Bench", db.Item{"dev": fmt.Sprintf("p%d", j/partition), "id": fmt.Sprintf("%010d", j)}, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("P9 gets: %w", err)
	}
	rawRate, _, err := runWriters(ctx, readers, o.Duration, func(_, _ int) error {
		j := rand.IntN(n)
		return raw.View(func(txn *badgerdb.Txn) error {
			it, err := txn.Get(rawKey(fmt.Sprintf("p%d", j/partition), j))
			if err != nil {
				return err
			}
			_, err = it.ValueCopy(nil)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("P9 raw gets: %w", err)
	}
	_, findDist, err := runWriters(ctx, 1, o.Duration, func(_, _ int) error {
		p := rand.IntN(n / partition)
		res, err := b.db.Find(ctx, "Bench", db.Item{"dev": fmt.Sprintf("p%d", p)}, &db.Params{Limit: partition})
		if err == nil && len(res.Items) != partition {
			err = fmt.Errorf("find returned %d items, want %d", len(res.Items), partition)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("P9 finds: %w", err)
	}
	_, rawFindDist, err := runWriters(ctx, 1, o.Duration, func(_, _ int) error {
		p := rand.IntN(n / partition)
		return raw.View(func(txn *badgerdb.Txn) error {
			prefix := fmt.Appendf(nil, "bench#p%d\x00", p)
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
	})
	if err != nil {
		return fmt.Errorf("P9 raw finds: %w", err)
	}
	perItem := float64(anonAfter-anonBefore) / float64(n)
	fmt.Fprintf(w, "\nP9 reads over %d items (loaded in %s, %d readers for gets)\n", n, load.Round(time.Millisecond), readers)
	fmt.Fprintf(w, "  iotod get                  %9.0f gets/s  %s\n", getRate, getDist)
	fmt.Fprintf(w, "  raw badger get             %9.0f gets/s\n", rawRate)
	fmt.Fprintf(w, "  ratio                      %9.2fx   (bar: >= 200,000 gets/s)\n", getRate/rawRate)
	fmt.Fprintf(w, "  iotod 100-item find        %s   (bar: median <= 75us, p99 <= 1ms)\n", findDist)
	fmt.Fprintf(w, "  raw badger 100-key scan    %s\n", rawFindDist)
	fmt.Fprintf(w, "  memory per stored item     %.0f bytes of anonymous memory (%s before, %s after load)  (bar: <= 512 bytes)\n",
		perItem, mib(anonBefore), mib(anonAfter))
	fmt.Fprintf(w, "  whole RSS incl. mapped     %s before, %s after load (file pages of memory-mapped tables count here)\n",
		mib(rssBefore), mib(rssAfter))
	return nil
}
