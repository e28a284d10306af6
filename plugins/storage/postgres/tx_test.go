package postgres

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// Concurrent read-modify-write updates of one record all count: the
// losers of each serialization failure run again.
func TestUpdateRetriesConflicts(t *testing.T) {
	cfg := testConfig(t)
	cfg.ConflictRetries = 1000
	s := openStore(t, cfg)
	key := pipeline.Key{PK: "counter", SK: "n"}
	putAll(t, s, &pipeline.Record{Key: key, Model: "Counter", Item: []byte("0")})
	const writers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range each {
				err := s.Update(t.Context(), func(tx pipeline.Tx) error {
					r, err := tx.Get(t.Context(), key)
					if err != nil {
						return err
					}
					n, err := strconv.Atoi(string(r.Item))
					if err != nil {
						return err
					}
					r.Item = []byte(strconv.Itoa(n + 1))
					return tx.Put(t.Context(), r)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var got *pipeline.Record
	err := s.View(t.Context(), func(tx pipeline.ReadTx) error {
		var err error
		got, err = tx.Get(t.Context(), key)
		return err
	})
	if err != nil {
		t.Fatalf("get counter: %v", err)
	}
	if string(got.Item) != strconv.Itoa(writers*each) {
		t.Fatalf("counter %s; want %d", got.Item, writers*each)
	}
	if s.conflicts.Load() == 0 {
		t.Error("no conflict retried: the test proves nothing")
	}
	t.Logf("%d conflicts retried", s.conflicts.Load())

	// With no retries left, the conflict is the update's error.
	cfg.ConflictRetries = 0
	s0 := openStore(t, cfg)
	var failed atomic.Bool
	var wg2 sync.WaitGroup
	for range writers {
		wg2.Go(func() {
			for range each {
				err := s0.Update(t.Context(), func(tx pipeline.Tx) error {
					r, err := tx.Get(t.Context(), key)
					if err != nil {
						return err
					}
					time.Sleep(time.Millisecond)
					return tx.Put(t.Context(), r)
				})
				if err != nil && isConflict(err) {
					failed.Store(true)
				} else if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg2.Wait()
	if !failed.Load() {
		t.Error("no update failed for a conflict with conflict_retries 0")
	}
}

// Prefetch reads many keys in one query; the Gets that follow see what it
// read, and the transaction's own writes after it.
func TestPrefetch(t *testing.T) {
	s := openStore(t, testConfig(t))
	putAll(t, s, rec("p", "1"), rec("p", "2"), rec("p", "3"))
	keys := []pipeline.Key{{PK: "p", SK: "1"}, {PK: "p", SK: "2"}, {PK: "p", SK: "3"}, {PK: "p", SK: "missing"}}
	err := s.Update(t.Context(), func(tx pipeline.Tx) error {
		p, ok := tx.(pipeline.Prefetcher)
		if !ok {
			return errors.New("an update's transaction is not a Prefetcher")
		}
		if err := p.Prefetch(t.Context(), keys); err != nil {
			return err
		}
		if r, err := tx.Get(t.Context(), keys[0]); err != nil || r.Key != keys[0] {
			return fmt.Errorf("get prefetched: %v %v", r, err)
		}
		if _, err := tx.Get(t.Context(), keys[3]); !errors.Is(err, pipeline.ErrNotFound) {
			return fmt.Errorf("get prefetched missing: %v", err)
		}
		changed := rec("p", "2")
		changed.Item = []byte(`{"changed":true}`)
		if err := tx.Put(t.Context(), changed); err != nil {
			return err
		}
		if r, err := tx.Get(t.Context(), keys[1]); err != nil || string(r.Item) != `{"changed":true}` {
			return fmt.Errorf("get after put: %v %v", r, err)
		}
		if err := tx.Delete(t.Context(), keys[2]); err != nil {
			return err
		}
		if _, err := tx.Get(t.Context(), keys[2]); !errors.Is(err, pipeline.ErrNotFound) {
			return fmt.Errorf("get after delete: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(t.Context(), func(tx pipeline.ReadTx) error {
		if err := tx.(pipeline.Prefetcher).Prefetch(t.Context(), keys); err != nil {
			return err
		}
		r, err := tx.Get(t.Context(), keys[1])
		if err != nil || string(r.Item) != `{"changed":true}` {
			return fmt.Errorf("view get prefetched: %v %v", r, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A record the tables cannot hold is refused before anything is sent:
// the update goes on and commits the rest, as iotod's database does after
// an item's error.
func TestRefusedRecordLeavesTheUpdateUsable(t *testing.T) {
	s := openStore(t, testConfig(t))
	long := strings.Repeat("k", maxKeyBytes)
	bad := []*pipeline.Record{
		rec(long, "x"),
		rec("a", "1", pipeline.IndexEntry{Index: "gs1", Hash: strings.Repeat("h", maxEntryBytes), Sort: "s"}),
		{Key: pipeline.Key{PK: "a", SK: "2"}, Model: "Bad\x00Model", Item: []byte(`{}`)},
		{Key: pipeline.Key{PK: "a", SK: "3"}, Model: "Thing", Item: []byte(`{}`), Expires: -1},
	}
	want := []error{pipeline.ErrTooLarge, pipeline.ErrTooLarge, pipeline.ErrInvalid, pipeline.ErrInvalid}
	err := s.Update(t.Context(), func(tx pipeline.Tx) error {
		for i, r := range bad {
			if err := tx.Put(t.Context(), r); !errors.Is(err, want[i]) {
				return fmt.Errorf("put %d: got %v, want %v", i, err, want[i])
			}
		}
		return tx.Put(t.Context(), rec("a", "ok"))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(t.Context(), func(tx pipeline.ReadTx) error {
		_, err := tx.Get(t.Context(), pipeline.Key{PK: "a", SK: "ok"})
		return err
	})
	if err != nil {
		t.Fatalf("the good record of the update: %v", err)
	}
}

// The sweep deletes expired items and their entries, and nothing else;
// a tombstone is kept tombstone_ttl at least.
func TestSweepAndTombstoneTTL(t *testing.T) {
	cfg := testConfig(t)
	cfg.TombstoneTTL = 30 * 24 * time.Hour
	s := openStore(t, cfg)
	expired := rec("sw", "expired", pipeline.IndexEntry{Index: "gs1", Hash: "h", Sort: "1"})
	expired.Expires = time.Now().Add(-time.Second).UnixMilli()
	live := rec("sw", "live", pipeline.IndexEntry{Index: "gs1", Hash: "h", Sort: "2"})
	live.Expires = time.Now().Add(time.Hour).UnixMilli()
	tomb := &pipeline.Record{Key: pipeline.Key{PK: "sw", SK: "gone"}, Model: tombstoneModel, Item: []byte(`{"model":"Thing"}`),
		Expires: time.Now().Add(time.Hour).UnixMilli()}
	putAll(t, s, expired, live, tomb, rec("sw", "forever"))
	n, err := s.sweep(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d deleted, %v; want 1", n, err)
	}
	conn := rawConn(t)
	var items, entries int
	if err := conn.QueryRow(t.Context(), "SELECT (SELECT count(*) FROM "+s.n.items+"), (SELECT count(*) FROM "+s.n.entries+")").Scan(&items, &entries); err != nil {
		t.Fatal(err)
	}
	if items != 3 || entries != 1 {
		t.Fatalf("after the sweep: %d items, %d entries; want 3 and 1", items, entries)
	}
	var got *pipeline.Record
	err = s.View(t.Context(), func(tx pipeline.ReadTx) error {
		got, err = tx.Get(t.Context(), tomb.Key)
		return err
	})
	if err != nil {
		t.Fatalf("get tombstone: %v", err)
	}
	if got.Expires < time.Now().Add(cfg.TombstoneTTL-time.Minute).UnixMilli() {
		t.Fatalf("tombstone expires %v; want in %s", time.UnixMilli(got.Expires), cfg.TombstoneTTL)
	}
}
