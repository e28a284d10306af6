package badger

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// TestSyncerGroupsWaiters: 64 concurrent waiters share a few syncs, and
// each waiter's sync started after it asked.
func TestSyncerGroupsWaiters(t *testing.T) {
	var calls, started atomic.Int64
	s := newSyncer(func() error {
		started.Add(1)
		calls.Add(1)
		time.Sleep(2 * time.Millisecond)
		return nil
	})
	defer s.close()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			before := started.Load()
			if err := s.wait(t.Context()); err != nil {
				t.Error(err)
			}
			if started.Load() <= before {
				t.Error("wait returned without a sync that started after it")
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n < 1 || n > 32 {
		t.Fatalf("%d syncs for 64 waiters", n)
	}
}

func TestSyncerReportsErrorAndContext(t *testing.T) {
	boom := errors.New("disk gone")
	release := make(chan struct{})
	s := newSyncer(func() error { <-release; return boom })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	close(release)
	if err := s.wait(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("wait: got %v, want the sync error", err)
	}
	s.close()
}

func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogSyncRotatedFilesOnce: the newest log of each kind is synced every
// round, rotated ones once, and deleted ones are forgotten.
func TestLogSyncRotatedFilesOnce(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "00001.mem", "00002.mem", "000001.vlog", "000002.vlog", "MANIFEST", "000003.sst")
	l := newLogSync(dir)
	defer l.close()
	if err := l.sync(false); err != nil {
		t.Fatal(err)
	}
	rotated := func() []string { return slices.Sorted(maps.Keys(l.synced)) }
	if got := rotated(); !slices.Equal(got, []string{"000001.vlog", "00001.mem"}) {
		t.Fatalf("rotated synced: %q", got)
	}
	if _, open := l.files["00002.mem"]; !open {
		t.Fatal("the current write-ahead log was not synced")
	}
	if _, open := l.files["000002.vlog"]; open {
		t.Fatal("the current value log was synced though no value went there")
	}
	if err := l.sync(true); err != nil {
		t.Fatal(err)
	}
	if _, open := l.files["000002.vlog"]; !open {
		t.Fatal("the current value log was not synced after a value went there")
	}
	if err := os.Remove(filepath.Join(dir, "00001.mem")); err != nil {
		t.Fatal(err)
	}
	touch(t, dir, "00003.mem")
	if err := l.sync(false); err != nil {
		t.Fatal(err)
	}
	if got := rotated(); !slices.Equal(got, []string{"000001.vlog", "00002.mem"}) {
		t.Fatalf("rotated synced after rotation: %q", got)
	}
	if _, open := l.files["00002.mem"]; open {
		t.Fatal("a rotated log stays open")
	}
}

func TestLogSyncNeedsWriteAheadLog(t *testing.T) {
	l := newLogSync(t.TempDir())
	if err := l.sync(true); !errors.Is(err, errNoLogs) {
		t.Fatalf("empty dir: %v", err)
	}
}

// TestLogSyncFindsBadgerLogs pins badger's log file names: in a real store
// logSync must not fall back to DB.Sync.
func TestLogSyncFindsBadgerLogs(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir(), DurabilitySync))
	if err := s.Update(t.Context(), func(tx pipeline.Tx) error {
		return tx.Put(t.Context(), &pipeline.Record{Key: pipeline.Key{PK: "a", SK: "b"}})
	}); err != nil {
		t.Fatal(err)
	}
	l := newLogSync(s.cfg.Path)
	defer l.close()
	if err := l.sync(true); err != nil {
		t.Fatalf("sync in a badger directory: %v", err)
	}
	if len(l.files) != 2 {
		t.Fatalf("synced %d current logs, want a .mem and a .vlog", len(l.files))
	}
}

// TestLargeValueDurable writes an item that badger puts in the value log
// and reads it back after a reopen.
func TestLargeValueDurable(t *testing.T) {
	cfg := testConfig(t.TempDir(), DurabilitySync)
	s := openTest(t, cfg)
	item := make([]byte, 700<<10)
	for i := range item {
		item[i] = byte('a' + i%26)
	}
	r := &pipeline.Record{Key: pipeline.Key{PK: "big", SK: "1"}, Item: item}
	err := s.Update(t.Context(), func(tx pipeline.Tx) error {
		if err := tx.Put(t.Context(), r); err != nil {
			return err
		}
		return tx.Emit(t.Context(), &pipeline.Change{Key: r.Key, Op: pipeline.OpCreate, Item: item})
	})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	err = s.View(t.Context(), func(tx pipeline.ReadTx) error {
		got, err := tx.Get(t.Context(), r.Key)
		if err == nil && string(got.Item) != string(item) {
			err = errors.New("item differs")
		}
		return err
	})
	if err != nil {
		t.Fatalf("get after reopen: %v", err)
	}
	chs, err := s.Outbox().Read(t.Context(), 0, 10)
	if err != nil || len(chs) != 1 || len(chs[0].Item) != len(item) {
		t.Fatalf("outbox after reopen: %d changes, %v", len(chs), err)
	}
}
