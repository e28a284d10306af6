// Package plugintest holds the conformance suites that every plugin of a
// kind must pass.
package plugintest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// TestStore runs the storage conformance suite for a store with the whole
// contract (every StoreFeatures zero). open must return a working store in
// dir (failing t otherwise); it is called again with the same dir to
// reopen a closed store, which must find everything committed before. A
// remote store may map dir to anything durable (a table): reopening is then
// a new client on the same data. The suite closes every store it opens.
func TestStore(t *testing.T, open func(t *testing.T, dir string) pipeline.Store) {
	TestStoreFeatures(t, StoreFeatures{}, open)
}

// StoreFeatures states how a store departs from the full storage contract.
// The zero value is the whole contract. Each field set replaces the
// assertions it concerns by assertions of the stated behaviour: nothing is
// skipped silently.
type StoreFeatures struct {
	// NoOutbox: the store keeps no outbox (its changes are fed some other
	// way). Emit fails with an error wrapping errors.ErrUnsupported, so the
	// Update fails and writes nothing; Outbox().Read, Trim and Stats fail
	// the same way and Notify never fires. The outbox tests check exactly
	// that; the other tests write without Emit.
	NoOutbox bool
	// MaxWritesPerUpdate: one Update writes at most this many records (puts
	// and deletes); a larger one fails with an error wrapping
	// pipeline.ErrTooLarge and writes nothing. Zero: no limit (the suite
	// writes 1000 records in one Update).
	MaxWritesPerUpdate int
	// NoEmptyKeys: a key with an empty pk or sk cannot be stored: Put fails
	// with an error wrapping pipeline.ErrInvalid and Get finds nothing.
	NoEmptyKeys bool
	// ExpiresPrecision: a record's Expires is kept cut down to a multiple
	// of this (e.g. time.Second); zero: to the millisecond.
	ExpiresPrecision time.Duration
}

// storeEnv is what each test of the suite gets.
type storeEnv struct {
	open StoreOpener
	feat StoreFeatures
}

// TestStoreFeatures runs the storage conformance suite for a store with
// the stated features; see TestStore.
func TestStoreFeatures(t *testing.T, feat StoreFeatures, open func(t *testing.T, dir string) pipeline.Store) {
	env := storeEnv{open: open, feat: feat}
	tests := []struct {
		name string
		fn   func(t *testing.T, env storeEnv)
	}{
		{"PutGetReplaceDelete", testPutGetReplaceDelete},
		{"KeyCollision", testKeyCollision},
		{"InvalidInput", testInvalidInput},
		{"SortConditions", testSortConditions},
		{"Pagination", testPagination},
		{"HashPrefix", testHashPrefix},
		{"SecondaryIndexMaintenance", testSecondaryIndexMaintenance},
		{"Atomicity", testAtomicity},
		{"WritesPerUpdate", testWritesPerUpdate},
		{"Outbox", testOutbox},
		{"OutboxNotify", testOutboxNotify},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Restart", testRestart},
		{"TTL", testTTL},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, env) })
	}
}

func testPutGetReplaceDelete(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	ctx := t.Context()
	if _, err := s.get(pipeline.Key{PK: "a", SK: "1"}); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("get missing: got %v, want ErrNotFound", err)
	}
	r := rec("a", "1", gs1("h", "s"))
	r.Expires = time.Now().Add(time.Hour).UnixMilli()
	s.put(r)
	got, err := s.get(r.Key)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	s.sameRecord(got, r)

	r2 := rec("a", "1")
	r2.Model, r2.Item, r2.Version = "Other", []byte(`{"v":2}`), pipeline.Version{Wall: 9, Origin: "b"}
	s.put(r2)
	got, err = s.get(r2.Key)
	if err != nil {
		t.Fatalf("get replaced: %v", err)
	}
	s.sameRecord(got, r2)

	err = s.Update(ctx, func(tx pipeline.Tx) error {
		if err := tx.Delete(ctx, r.Key); err != nil {
			return err
		}
		// Deleting a missing key is not an error.
		return tx.Delete(ctx, pipeline.Key{PK: "nobody", SK: "x"})
	})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.get(r.Key); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("get deleted: got %v, want ErrNotFound", err)
	}
	// A transaction sees its own writes.
	err = s.Update(ctx, func(tx pipeline.Tx) error {
		if err := tx.Put(ctx, rec("own", "1")); err != nil {
			return err
		}
		_, err := tx.Get(ctx, pipeline.Key{PK: "own", SK: "1"})
		return err
	})
	if err != nil {
		t.Fatalf("read own write: %v", err)
	}
}

// testKeyCollision: keys whose concatenations agree must stay apart, and
// keys holding 0x00 must order as their strings do.
func testKeyCollision(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	recs := []*pipeline.Record{
		rec("a", "b#c", gs1("h", "x#y")), rec("a#b", "c", gs1("h#x", "y")),
		rec("a\x00", "b"), rec("a", "\x00b"), rec("a", "b"),
	}
	inA := []string{"a/\x00b", "a/b", "a/b#c"}
	if env.feat.NoEmptyKeys {
		for _, k := range []pipeline.Key{{PK: "a", SK: ""}, {PK: "", SK: "a"}} {
			err := s.Update(t.Context(), func(tx pipeline.Tx) error {
				return tx.Put(t.Context(), rec(k.PK, k.SK))
			})
			if !errors.Is(err, pipeline.ErrInvalid) {
				t.Fatalf("put of empty key part %s (NoEmptyKeys): got %v, want ErrInvalid", k, err)
			}
			if _, err := s.get(k); !errors.Is(err, pipeline.ErrNotFound) {
				t.Fatalf("get of empty key part %s (NoEmptyKeys): got %v, want ErrNotFound", k, err)
			}
		}
	} else {
		recs = append(recs, rec("a", ""))
		inA = append([]string{"a/"}, inA...)
	}
	s.put(recs...)
	for _, r := range recs {
		got, err := s.get(r.Key)
		if err != nil {
			t.Fatalf("get %s: %v", r.Key, err)
		}
		s.sameRecord(got, r)
	}
	sameStrings(t, `scan pk "a"`, s.scanKeys(pipeline.Query{Hash: "a"}), inA)
	sameStrings(t, `scan hash prefix "a"`, s.scanKeys(pipeline.Query{Hash: "a", HashPrefix: true}),
		append(inA, "a\x00/b", "a#b/c"))
	sameStrings(t, `gs1 hash "h"`, s.scanKeys(pipeline.Query{Index: "gs1", Hash: "h"}), []string{"a/b#c"})
	sameStrings(t, `gs1 hash "h#x"`, s.scanKeys(pipeline.Query{Index: "gs1", Hash: "h#x"}), []string{"a#b/c"})
}

func testInvalidInput(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	ctx := t.Context()
	for _, c := range []pipeline.SortCond{
		{Op: pipeline.SortBetween, Values: []string{"a"}},
		{Op: pipeline.SortEQ},
		{Op: "~", Values: []string{"a"}},
	} {
		err := s.View(ctx, func(tx pipeline.ReadTx) error {
			return tx.Scan(ctx, pipeline.Query{Hash: "a", Sort: c}, func(*pipeline.Record, pipeline.Position) (bool, error) {
				return true, nil
			})
		})
		if !errors.Is(err, pipeline.ErrInvalid) {
			t.Errorf("scan with %+v: got %v, want ErrInvalid", c, err)
		}
	}
}

func testAtomicity(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	ctx := t.Context()
	boom := errors.New("boom")
	r := rec("atom", "1", gs1("h", "s"))
	// emit emits r's change unless the store has no outbox (NoOutbox:
	// testOutbox checks that Emit fails).
	emit := func(tx pipeline.Tx) error {
		if env.feat.NoOutbox {
			return nil
		}
		return tx.Emit(ctx, change(r, pipeline.OpCreate))
	}
	err := s.Update(ctx, func(tx pipeline.Tx) error {
		if err := tx.Put(ctx, r); err != nil {
			return err
		}
		if err := tx.Put(ctx, rec("atom", "2")); err != nil {
			return err
		}
		if err := emit(tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update: got %v, want fn's error", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = s.Update(cancelled, func(tx pipeline.Tx) error {
		if err := tx.Put(ctx, r); err != nil {
			return err
		}
		return emit(tx)
	})
	if err == nil {
		t.Fatal("update with a cancelled context succeeded")
	}
	for _, k := range []pipeline.Key{r.Key, {PK: "atom", SK: "2"}} {
		if _, err := s.get(k); !errors.Is(err, pipeline.ErrNotFound) {
			t.Fatalf("get %s after failed update: got %v, want ErrNotFound", k, err)
		}
	}
	if keys := s.scanKeys(pipeline.Query{Index: "gs1", Hash: "h"}); len(keys) != 0 {
		t.Fatalf("index entries after failed update: %q", keys)
	}
	if env.feat.NoOutbox {
		return
	}
	if chs := s.readAll(); len(chs) != 0 {
		t.Fatalf("outbox after failed update: %+v", chs)
	}
	if st := s.stats(); st.Depth != 0 {
		t.Fatalf("outbox stats after failed update: %+v", st)
	}
}

func testRestart(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	var recs []*pipeline.Record
	var last uint64
	for i := range 30 {
		r := rec("restart", fmt.Sprintf("%02d", i), gs1("g", fmt.Sprintf("%02d", 29-i)))
		if i%3 == 0 {
			r.Expires = time.Now().Add(time.Hour).UnixMilli()
		}
		recs = append(recs, r)
		if env.feat.NoOutbox {
			s.put(r)
		} else {
			last = s.putEmit(r).Seq
		}
	}
	s.reopen()
	for _, r := range recs {
		got, err := s.get(r.Key)
		if err != nil {
			t.Fatalf("get %s after reopen: %v", r.Key, err)
		}
		s.sameRecord(got, r)
	}
	if n := len(s.scan(pipeline.Query{Index: "gs1", Hash: "g"}, 0)); n != 30 {
		t.Fatalf("gs1 entries after reopen: %d, want 30", n)
	}
	if env.feat.NoOutbox {
		return // testOutbox checks that the outbox fails as stated
	}
	if st := s.stats(); st.Depth != 30 || st.Last != last {
		t.Fatalf("outbox stats after reopen: %+v, want depth 30 last %d", st, last)
	}
	if chs := s.readAll(); len(chs) != 30 || chs[29].Seq != last {
		t.Fatalf("outbox after reopen: %d changes", len(chs))
	}
	if seq := s.putEmit(rec("restart", "new")).Seq; seq <= last {
		t.Fatalf("seq after reopen %d, want > %d", seq, last)
	}
}

func testTTL(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	now := time.Now().UnixMilli()
	expired := rec("ttl", "expired", gs1("t", "1"))
	expired.Expires = now - 1000
	live := rec("ttl", "live", gs1("t", "2"))
	live.Expires = now + 3600_000
	forever := rec("ttl", "forever", gs1("t", "3"))
	s.put(expired, live, forever)
	if _, err := s.get(expired.Key); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("get expired: got %v, want ErrNotFound", err)
	}
	if _, err := s.get(live.Key); err != nil {
		t.Fatalf("get live: %v", err)
	}
	sameStrings(t, "primary scan", s.scanKeys(pipeline.Query{Hash: "ttl"}), []string{"ttl/forever", "ttl/live"})
	sameStrings(t, "gs1 scan", s.scanKeys(pipeline.Query{Index: "gs1", Hash: "t"}), []string{"ttl/live", "ttl/forever"})
	// Writing over an expired record revives the key.
	revived := rec("ttl", "expired", gs1("t", "0"))
	s.put(revived)
	got, err := s.get(revived.Key)
	if err != nil {
		t.Fatalf("get revived: %v", err)
	}
	s.sameRecord(got, revived)
	sameStrings(t, "gs1 scan after revive", s.scanKeys(pipeline.Query{Index: "gs1", Hash: "t"}),
		[]string{"ttl/expired", "ttl/live", "ttl/forever"})
}

func testClose(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	s.put(rec("c", "1"))
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("second close: %v", err)
	}
	err := s.View(t.Context(), func(pipeline.ReadTx) error { return nil })
	if !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("view after close: got %v, want ErrClosed", err)
	}
	err = s.Update(t.Context(), func(pipeline.Tx) error { return nil })
	if !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("update after close: got %v, want ErrClosed", err)
	}
}
