package plugintest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

func testOutbox(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	ctx := t.Context()
	if env.feat.NoOutbox {
		testNoOutbox(t, s)
		return
	}
	start := time.Now()
	var emitted []*pipeline.Change
	for i := range 3 {
		emitted = append(emitted, s.putEmit(rec("ob", fmt.Sprint(i))))
	}
	r3, r4 := rec("ob", "3"), rec("ob", "4")
	err := s.Update(ctx, func(tx pipeline.Tx) error {
		emitted = emitted[:3]
		removed := change(r4, pipeline.OpRemove)
		removed.Item = nil
		for _, ch := range []*pipeline.Change{change(r3, pipeline.OpCreate), removed} {
			if err := tx.Emit(ctx, ch); err != nil {
				return err
			}
			emitted = append(emitted, ch)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("update with two emits: %v", err)
	}
	chs := s.readAll()
	if len(chs) != 5 {
		t.Fatalf("read %d changes, want 5", len(chs))
	}
	seqs := make([]uint64, len(chs))
	for i, ch := range chs {
		seqs[i] = ch.Seq
		want := emitted[i]
		if i > 0 && ch.Seq <= seqs[i-1] {
			t.Fatalf("seqs not increasing: %v", seqs[:i+1])
		}
		if want.Seq != ch.Seq {
			t.Fatalf("change %d: emitted change got seq %d, outbox has %d", i, want.Seq, ch.Seq)
		}
		if ch.Key != want.Key || ch.Model != want.Model || ch.Op != want.Op || !bytes.Equal(ch.Item, want.Item) ||
			(ch.Item == nil) != (want.Item == nil) || ch.Version != want.Version || ch.Origin != want.Origin || ch.Time == 0 {
			t.Fatalf("change %d:\n got %+v\nwant %+v", i, ch, *want)
		}
	}
	page, err := s.Outbox().Read(ctx, seqs[1], 2)
	if err != nil || len(page) != 2 || page[0].Seq != seqs[2] || page[1].Seq != seqs[3] {
		t.Fatalf("read after %d max 2: %+v, %v", seqs[1], page, err)
	}
	if page, err := s.Outbox().Read(ctx, seqs[4], 10); err != nil || len(page) != 0 {
		t.Fatalf("read after last: %+v, %v", page, err)
	}

	st := s.stats()
	if st.Depth != 5 || st.First != seqs[0] || st.Last != seqs[4] {
		t.Fatalf("stats %+v, want depth 5 first %d last %d", st, seqs[0], seqs[4])
	}
	if st.Oldest.Before(start.Add(-time.Second)) || st.Oldest.After(time.Now().Add(time.Second)) {
		t.Fatalf("stats oldest %v, want about %v", st.Oldest, start)
	}

	trim := func(upTo uint64) {
		t.Helper()
		if err := s.Outbox().Trim(ctx, upTo); err != nil {
			t.Fatalf("trim %d: %v", upTo, err)
		}
	}
	trim(seqs[1])
	if chs := s.readAll(); len(chs) != 3 || chs[0].Seq != seqs[2] {
		t.Fatalf("after trim to %d: %+v", seqs[1], chs)
	}
	if st := s.stats(); st.Depth != 3 || st.First != seqs[2] || st.Last != seqs[4] {
		t.Fatalf("stats after trim %+v", st)
	}
	s.reopen()
	if st := s.stats(); st.Depth != 3 || st.First != seqs[2] || st.Last != seqs[4] {
		t.Fatalf("stats after trim and reopen %+v", st)
	}
	trim(seqs[4])
	if st := s.stats(); st.Depth != 0 || st.First != 0 || st.Last != seqs[4] {
		t.Fatalf("stats after trimming all %+v, want depth 0 first 0 last %d", st, seqs[4])
	}
	s.reopen()
	if st := s.stats(); st.Depth != 0 || st.Last != seqs[4] {
		t.Fatalf("stats after trimming all and reopen %+v, want last %d", st, seqs[4])
	}
	if seq := s.putEmit(rec("ob", "5")).Seq; seq <= seqs[4] {
		t.Fatalf("seq after trim and reopen %d, want > %d", seq, seqs[4])
	}
}

func testOutboxNotify(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	notify := s.Outbox().Notify()
	if env.feat.NoOutbox {
		// Without an outbox nothing is emitted: no notification, ever.
		s.put(rec("n", "quiet"))
		select {
		case <-notify:
			t.Fatal("notification from a store without an outbox (NoOutbox)")
		case <-time.After(50 * time.Millisecond):
		}
		return
	}
	select {
	case <-notify:
	default:
	}
	s.put(rec("n", "quiet"))
	s.putEmit(rec("n", "1"))
	select {
	case <-notify:
	case <-time.After(2 * time.Second):
		t.Fatal("no notification after a commit that emitted")
	}
}

// testConcurrentWriters: every write lands in the outbox exactly once, in
// strictly increasing order, and a reader following along misses none.
func testConcurrentWriters(t *testing.T, env storeEnv) {
	const writers, each = 16, 200
	s := newStore(t, env)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	done := make(chan followResult, 1)
	go func() { done <- follow(followCtx, s.Outbox(), writers*each) }()

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	pad := bytes.Repeat([]byte("x"), 150)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := rec(fmt.Sprintf("cw#%02d", w), fmt.Sprintf("%04d", i), gs1("all", fmt.Sprintf("%02d-%04d", w, i)))
				r.Item = fmt.Appendf(nil, `{"w":%d,"i":%d,"pad":%q}`, w, i, pad)
				err := s.Update(ctx, func(tx pipeline.Tx) error {
					if err := tx.Put(ctx, r); err != nil {
						return err
					}
					if s.feat.NoOutbox {
						return nil
					}
					return tx.Emit(ctx, change(r, pipeline.OpCreate))
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d write %d: %w", w, i, err)
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
	if env.feat.NoOutbox {
		stopFollowing()
		<-done
		// No outbox to follow: every write must be in the store and its index.
		keys := map[pipeline.Key]bool{}
		for w := range writers {
			for _, p := range s.scan(pipeline.Query{Hash: fmt.Sprintf("cw#%02d", w)}, 0) {
				keys[p.Key] = true
			}
		}
		if len(keys) != writers*each {
			t.Fatalf("store holds %d records, want %d", len(keys), writers*each)
		}
		if n := len(s.scan(pipeline.Query{Index: "gs1", Hash: "all"}, 0)); n != writers*each {
			t.Fatalf("gs1 holds %d entries, want %d", n, writers*each)
		}
		return
	}
	// Every write has committed: the follower must catch up at once.
	var res followResult
	select {
	case res = <-done:
	case <-time.After(5 * time.Second):
		stopFollowing()
		res = <-done
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	keys := make(map[pipeline.Key]bool, writers*each)
	for _, ch := range res.seen {
		keys[ch.Key] = true
	}
	if len(keys) != writers*each {
		t.Fatalf("reader saw %d distinct keys, want %d", len(keys), writers*each)
	}
	all := s.readAll()
	if len(all) != writers*each {
		t.Fatalf("outbox holds %d changes, want %d", len(all), writers*each)
	}
	if st := s.stats(); st.Depth != writers*each || st.Last != all[len(all)-1].Seq {
		t.Fatalf("stats %+v", st)
	}
	if n := len(s.scan(pipeline.Query{Index: "gs1", Hash: "all"}, 0)); n != writers*each {
		t.Fatalf("gs1 holds %d entries, want %d", n, writers*each)
	}
}

type followResult struct {
	seen []pipeline.Change
	err  error
}

// follow reads the outbox as a replication consumer would until it has
// want changes, checking that seqs strictly increase.
func follow(ctx context.Context, ob pipeline.Outbox, want int) (out followResult) {
	var after uint64
	for len(out.seen) < want {
		chs, err := ob.Read(ctx, after, 64)
		if err != nil {
			out.err = fmt.Errorf("follower read after %d: %w", after, err)
			return out
		}
		for _, ch := range chs {
			if ch.Seq <= after {
				out.err = fmt.Errorf("follower: seq %d after %d", ch.Seq, after)
				return out
			}
			after = ch.Seq
		}
		out.seen = append(out.seen, chs...)
		if len(chs) > 0 {
			continue
		}
		select {
		case <-ob.Notify():
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			out.err = fmt.Errorf("follower saw %d of %d changes: %w", len(out.seen), want, ctx.Err())
			return out
		}
	}
	return out
}

// testNoOutbox checks a store without an outbox (NoOutbox): Emit fails with
// errors.ErrUnsupported and takes the Update's writes down with it, and the
// outbox methods fail the same way.
func testNoOutbox(t *testing.T, s *storeHandle) {
	ctx := t.Context()
	r := rec("ob", "1")
	err := s.Update(ctx, func(tx pipeline.Tx) error {
		if err := tx.Put(ctx, r); err != nil {
			return err
		}
		return tx.Emit(ctx, change(r, pipeline.OpCreate))
	})
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("update with emit (NoOutbox): got %v, want ErrUnsupported", err)
	}
	if _, err := s.get(r.Key); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("get after the failed emit: got %v, want ErrNotFound", err)
	}
	if _, err := s.Outbox().Read(ctx, 0, 10); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("outbox read (NoOutbox): got %v, want ErrUnsupported", err)
	}
	if err := s.Outbox().Trim(ctx, 1); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("outbox trim (NoOutbox): got %v, want ErrUnsupported", err)
	}
	if _, err := s.Outbox().Stats(ctx); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("outbox stats (NoOutbox): got %v, want ErrUnsupported", err)
	}
}

// testWritesPerUpdate: an Update writes MaxWritesPerUpdate records (with
// index entries) at once, or 1000 without a limit; with a limit, one more
// is refused with ErrTooLarge and none is written.
func testWritesPerUpdate(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	ctx := t.Context()
	n := env.feat.MaxWritesPerUpdate
	if n == 0 {
		n = 1000
	}
	write := func(pk string, count int) error {
		return s.Update(ctx, func(tx pipeline.Tx) error {
			for i := range count {
				if err := tx.Put(ctx, rec(pk, fmt.Sprintf("%04d", i), gs1(pk, fmt.Sprintf("%04d", i)))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := write("many", n); err != nil {
		t.Fatalf("update writing %d records: %v", n, err)
	}
	if got := len(s.scan(pipeline.Query{Hash: "many"}, 0)); got != n {
		t.Fatalf("%d records after an update of %d", got, n)
	}
	if got := len(s.scan(pipeline.Query{Index: "gs1", Hash: "many"}, 0)); got != n {
		t.Fatalf("%d gs1 entries after an update of %d", got, n)
	}
	// Deletes count too, and mix with puts.
	err := s.Update(ctx, func(tx pipeline.Tx) error {
		for i := range n {
			if i%2 == 0 {
				if err := tx.Delete(ctx, pipeline.Key{PK: "many", SK: fmt.Sprintf("%04d", i)}); err != nil {
					return err
				}
			} else if err := tx.Put(ctx, rec("many", fmt.Sprintf("%04d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("update deleting and writing %d records: %v", n, err)
	}
	if got := len(s.scan(pipeline.Query{Hash: "many"}, 0)); got != n/2 {
		t.Fatalf("%d records after deleting half of %d, want %d", got, n, n/2)
	}
	if got := len(s.scan(pipeline.Query{Index: "gs1", Hash: "many"}, 0)); got != 0 {
		t.Fatalf("%d gs1 entries after deleting or rewriting every record without one", got)
	}
	if env.feat.MaxWritesPerUpdate == 0 {
		return
	}
	if err := write("over", n+1); !errors.Is(err, pipeline.ErrTooLarge) {
		t.Fatalf("update writing %d records (MaxWritesPerUpdate %d): got %v, want ErrTooLarge", n+1, n, err)
	}
	if keys := s.scanKeys(pipeline.Query{Hash: "over"}); len(keys) != 0 {
		t.Fatalf("%d records written by the refused update", len(keys))
	}
}
