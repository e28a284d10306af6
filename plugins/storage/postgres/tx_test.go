package postgres

import (
	"errors"
	"fmt"
	"strconv"
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
	if err != nil || string(got.Item) != strconv.Itoa(writers*each) {
		t.Fatalf("counter %s, %v; want %d", got.Item, err, writers*each)
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
