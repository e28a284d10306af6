package badger

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

func testConfig(dir, durability string) Config {
	cfg := NewDefaultConfig()
	cfg.Path = dir
	cfg.Durability = durability
	cfg.SweepInterval = 50 * time.Millisecond
	return cfg
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func opener(durability string) func(t *testing.T, dir string) pipeline.Store {
	return func(t *testing.T, dir string) pipeline.Store {
		needBadger(t)
		s, err := Open(t.Context(), testConfig(dir, durability), testLogger(t))
		if err != nil {
			t.Fatalf("open %s: %v", dir, err)
		}
		return s
	}
}

func TestStoreConformance(t *testing.T) {
	plugintest.TestStore(t, opener(DurabilitySync))
}

func TestStoreConformanceAsync(t *testing.T) {
	plugintest.TestStore(t, opener(DurabilityAsync))
}

// openTest opens a store on a fresh directory and closes it at the end.
func openTest(t *testing.T, cfg Config) *Store {
	needBadger(t)
	t.Helper()
	s, err := Open(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// countKeys counts the raw keys under prefix.
func countKeys(t *testing.T, s *Store, prefix byte) int {
	t.Helper()
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSweepDeletesExpiredRecordsAndEntries(t *testing.T) {
	cfg := testConfig(t.TempDir(), DurabilityAsync)
	cfg.SweepInterval = time.Hour // sweep by hand
	s := openTest(t, cfg)
	ctx := t.Context()
	now := time.Now().UnixMilli()
	err := s.Update(ctx, func(tx pipeline.Tx) error {
		for i := range 600 {
			r := &pipeline.Record{
				Key:     pipeline.Key{PK: "t", SK: fmt.Sprint(i)},
				Indexes: []pipeline.IndexEntry{{Index: "gs1", Hash: "h", Sort: fmt.Sprint(i)}},
				Expires: now + int64(i%3-1)*60_000, // -1m, now, +1m
			}
			if err := tx.Put(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.sweep(ctx, now)
	if err != nil || n != 400 {
		t.Fatalf("sweep: %d deleted, %v; want 400", n, err)
	}
	for prefix, want := range map[byte]int{prefixRecord: 200, prefixIndex: 200, prefixExpiry: 200} {
		if got := countKeys(t, s, prefix); got != want {
			t.Errorf("keys under %q after sweep: %d, want %d", prefix, got, want)
		}
	}
}

func TestSweeperRunsInBackground(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir(), DurabilityAsync))
	r := &pipeline.Record{Key: pipeline.Key{PK: "t", SK: "1"}, Expires: time.Now().Add(30 * time.Millisecond).UnixMilli()}
	if err := s.Update(t.Context(), func(tx pipeline.Tx) error { return tx.Put(t.Context(), r) }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for countKeys(t, s, prefixRecord)+countKeys(t, s, prefixExpiry) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not delete an expired record")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOutboxSurvivesMemtableRotation writes through several memtable
// rotations with the smallest memtable and reopens.
func TestOutboxSurvivesMemtableRotation(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, DurabilitySync)
	cfg.MemTableSize = minMemTableSize
	s := openTest(t, cfg)
	ctx := t.Context()
	item := make([]byte, 2000)
	for i := range 2000 {
		err := s.Update(ctx, func(tx pipeline.Tx) error {
			r := &pipeline.Record{Key: pipeline.Key{PK: "rot", SK: fmt.Sprintf("%05d", i)}, Item: item}
			if err := tx.Put(ctx, r); err != nil {
				return err
			}
			return tx.Emit(ctx, &pipeline.Change{Key: r.Key, Op: pipeline.OpCreate, Item: item})
		})
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	st, err := s.Outbox().Stats(ctx)
	if err != nil || st.Depth != 2000 || st.Last != 2000 {
		t.Fatalf("stats after reopen: %+v, %v", st, err)
	}
}

func benchItem() []byte {
	item := []byte(`{"pk":"","sk":"","name":"`)
	for len(item) < 198 {
		item = append(item, 'x')
	}
	return append(item, '"', '}')
}

// setParallelism64 makes RunParallel use 64 goroutines.
func setParallelism64(b *testing.B) {
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
}

// BenchmarkDurablePut64 measures durable (group-committed) single-item
// writes, each an Update with Put and Emit, from 64 goroutines.
func BenchmarkDurablePut64(b *testing.B) {
	needBadger(b)
	s, err := Open(b.Context(), testConfig(b.TempDir(), DurabilitySync), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	item := benchItem()
	var n atomic.Uint64
	ctx := b.Context()
	setParallelism64(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			err := s.Update(ctx, func(tx pipeline.Tx) error {
				r := &pipeline.Record{
					Key:     pipeline.Key{PK: fmt.Sprintf("dev#%d", i%64), SK: fmt.Sprintf("reading#%012d", i)},
					Model:   "Reading",
					Item:    item,
					Indexes: []pipeline.IndexEntry{{Index: "gs1", Hash: "Reading", Sort: fmt.Sprintf("%012d", i)}},
					Version: pipeline.Version{Wall: time.Now().UnixMilli(), Origin: "bench"},
				}
				if err := tx.Put(ctx, r); err != nil {
					return err
				}
				return tx.Emit(ctx, &pipeline.Change{Model: r.Model, Op: pipeline.OpCreate, Key: r.Key, Item: item, Version: r.Version, Origin: "bench"})
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkRawBadgerSyncWrites64 is the baseline: badger with SyncWrites,
// one transaction per write setting an item and an outbox key, from 64
// goroutines.
func BenchmarkRawBadgerSyncWrites64(b *testing.B) {
	needBadger(b)
	db, err := badger.Open(badger.DefaultOptions(b.TempDir()).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	item := benchItem()
	var n atomic.Uint64
	setParallelism64(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			err := db.Update(func(txn *badger.Txn) error {
				if err := txn.Set(fmt.Appendf(nil, "r/dev#%d/reading#%012d", i%64, i), item); err != nil {
					return err
				}
				return txn.Set(binary.BigEndian.AppendUint64([]byte("o"), i), item)
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
