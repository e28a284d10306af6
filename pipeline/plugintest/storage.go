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

// TestStore runs the storage conformance suite. open must return a working
// store in dir (failing t otherwise); it is called again with the same dir
// to reopen a closed store, which must find everything committed before.
// The suite closes every store it opens.
func TestStore(t *testing.T, open func(t *testing.T, dir string) pipeline.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open StoreOpener)
	}{
		{"PutGetReplaceDelete", testPutGetReplaceDelete},
		{"KeyCollision", testKeyCollision},
		{"InvalidInput", testInvalidInput},
		{"SortConditions", testSortConditions},
		{"Pagination", testPagination},
		{"HashPrefix", testHashPrefix},
		{"SecondaryIndexMaintenance", testSecondaryIndexMaintenance},
		{"Atomicity", testAtomicity},
		{"Outbox", testOutbox},
		{"OutboxNotify", testOutboxNotify},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Restart", testRestart},
		{"TTL", testTTL},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func testPutGetReplaceDelete(t *testing.T, open StoreOpener) {
	s := newStore(t, open)
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
	sameRecord(t, got, r)

	r2 := rec("a", "1")
	r2.Model, r2.Item, r2.Version = "Other", []byte(`{"v":2}`), pipeline.Version{Wall: 9, Origin: "b"}
	s.put(r2)
	got, err = s.get(r2.Key)
	if err != nil {
		t.Fatalf("get replaced: %v", err)
	}
	sameRecord(t, got, r2)

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
func testKeyCollision(t *testing.T, open StoreOpener) {
	s := newStore(t, open)
	recs := []*pipeline.Record{
		rec("a", "b#c", gs1("h", "x#y")), rec("a#b", "c", gs1("h#x", "y")),
		rec("a\x00", "b"), rec("a", "\x00b"), rec("a", ""), rec("a", "b"),
	}
	s.put(recs...)
	for _, r := range recs {
		got, err := s.get(r.Key)
		if err != nil {
			t.Fatalf("get %s: %v", r.Key, err)
		}
		sameRecord(t, got, r)
	}
	sameStrings(t, `scan pk "a"`, s.scanKeys(pipeline.Query{Hash: "a"}),
		[]string{"a/", "a/\x00b", "a/b", "a/b#c"})
	sameStrings(t, `scan hash prefix "a"`, s.scanKeys(pipeline.Query{Hash: "a", HashPrefix: true}),
		[]string{"a/", "a/\x00b", "a/b", "a/b#c", "a\x00/b", "a#b/c"})
	sameStrings(t, `gs1 hash "h"`, s.scanKeys(pipeline.Query{Index: "gs1", Hash: "h"}), []string{"a/b#c"})
	sameStrings(t, `gs1 hash "h#x"`, s.scanKeys(pipeline.Query{Index: "gs1", Hash: "h#x"}), []string{"a#b/c"})
}

func testInvalidInput(t *testing.T, open StoreOpener) {
	s := newStore(t, open)
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

func testAtomicity(t *testing.T, open StoreOpener) {
	s := newStore(t, open)
	ctx := t.Context()
	boom := errors.New("boom")
	r := rec("atom", "1", gs1("h", "s"))
	err := s.Update(ctx, func(tx pipeline.Tx) error {
		if err := tx.Put(ctx, r); err != nil {
			return err
		}
		if err := tx.Emit(ctx, change(r, pipeline.OpCreate)); err != nil {
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
		return tx.Emit(ctx, change(r, pipeline.OpCreate))
	})
	if err == nil {
		t.Fatal("update with a cancelled context succeeded")
	}
	if _, err := s.get(r.Key); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("get after failed update: got %v, want ErrNotFound", err)
	}
	if keys := s.scanKeys(pipeline.Query{Index: "gs1", Hash: "h"}); len(keys) != 0 {
		t.Fatalf("index entries after failed update: %q", keys)
	}
	if chs := s.readAll(); len(chs) != 0 {
		t.Fatalf("outbox after failed update: %+v", chs)
	}
	if st := s.stats(); st.Depth != 0 {
		t.Fatalf("outbox stats after failed update: %+v", st)
	}
}

func testRestart(t *testing.T, open StoreOpener) {
	s := newStore(t, open)
	var recs []*pipeline.Record
	var last uint64
	for i := range 30 {
		r := rec("restart", fmt.Sprintf("%02d", i), gs1("g", fmt.Sprintf("%02d", 29-i)))
		if i%3 == 0 {
			r.Expires = time.Now().Add(time.Hour).UnixMilli()
		}
		recs = append(recs, r)
		last = s.putEmit(r).Seq
	}
	s.reopen()
	for _, r := range recs {
		got, err := s.get(r.Key)
		if err != nil {
			t.Fatalf("get %s after reopen: %v", r.Key, err)
		}
		sameRecord(t, got, r)
	}
	if n := len(s.scan(pipeline.Query{Index: "gs1", Hash: "g"}, 0)); n != 30 {
		t.Fatalf("gs1 entries after reopen: %d, want 30", n)
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

func testTTL(t *testing.T, open StoreOpener) {
	s := newStore(t, open)
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
	sameRecord(t, got, revived)
	sameStrings(t, "gs1 scan after revive", s.scanKeys(pipeline.Query{Index: "gs1", Hash: "t"}),
		[]string{"ttl/expired", "ttl/live", "ttl/forever"})
}

func testClose(t *testing.T, open StoreOpener) {
	s := newStore(t, open)
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
