package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// Two workers (two Stores on one schema, as two cloud processes) write
// and emit concurrently, each commit delayed a little after its outbox
// rows are inserted; some updates emit and then fail. A follower reading
// the outbox as a replication consumer does must see exactly what the
// outbox finally holds, in order: a seq that committed after a higher
// one had been read would be missing from what it saw.
func TestOutboxOrderAcrossWorkers(t *testing.T) {
	const workers, writers, each = 2, 8, 60
	cfg := testConfig(t)
	stores := make([]*Store, workers)
	for i := range stores {
		stores[i] = openStore(t, cfg)
		stores[i].beforeCommit = func() { time.Sleep(rand.N(2 * time.Millisecond)) }
	}
	reader := openStore(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	type result struct {
		seen []pipeline.Change
		err  error
	}
	var reached atomic.Uint64 // the follower's last seq
	stop := make(chan struct{})
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() { done <- res }()
		var after uint64
		for {
			chs, err := reader.Outbox().Read(ctx, after, 50)
			if err != nil {
				res.err = err
				return
			}
			for _, ch := range chs {
				if ch.Seq <= after {
					res.err = fmt.Errorf("seq %d after %d", ch.Seq, after)
					return
				}
				after = ch.Seq
			}
			res.seen = append(res.seen, chs...)
			reached.Store(after)
			if len(chs) > 0 {
				continue
			}
			select {
			case <-stop:
				return
			case <-reader.Outbox().Notify():
			case <-time.After(time.Millisecond):
			}
		}
	}()

	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make(chan error, workers*writers)
	for w := range workers * writers {
		s := stores[w%workers]
		wg.Go(func() {
			for i := range each {
				r := rec("w"+strconv.Itoa(w), fmt.Sprintf("%04d", i))
				fail := i%10 == 9
				err := s.Update(ctx, func(tx pipeline.Tx) error {
					if err := tx.Put(ctx, r); err != nil {
						return err
					}
					for range 1 + i%2 {
						if err := tx.Emit(ctx, &pipeline.Change{Model: r.Model, Op: pipeline.OpUpsert, Key: r.Key, Item: r.Item, Version: r.Version, Origin: "cloud"}); err != nil {
							return err
						}
					}
					if fail {
						return boom
					}
					return nil
				})
				if fail != errors.Is(err, boom) || (!fail && err != nil) {
					errs <- fmt.Errorf("writer %d write %d: %v", w, i, err)
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
	// Everything committed: the follower catches up, then stops.
	st, err := reader.Outbox().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); reached.Load() < st.Last && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	all, err := reader.Outbox().Read(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	perWriter := 0
	for i := range each {
		if i%10 != 9 {
			perWriter += 1 + i%2
		}
	}
	if want := workers * writers * perWriter; len(all) != want {
		t.Fatalf("outbox holds %d changes, want %d", len(all), want)
	}
	if len(res.seen) != len(all) {
		t.Fatalf("the follower saw %d changes of %d: it skipped some", len(res.seen), len(all))
	}
	for i := range all {
		if res.seen[i].Seq != all[i].Seq {
			t.Fatalf("change %d: the follower saw seq %d, the outbox holds %d", i, res.seen[i].Seq, all[i].Seq)
		}
	}
	t.Logf("%d changes by %d writers on %d workers; %d and %d conflicts retried", len(all), workers*writers, workers,
		stores[0].conflicts.Load(), stores[1].conflicts.Load())
}

// Another process's commit that emitted wakes Notify (LISTEN/NOTIFY);
// without listen it does not.
func TestNotifyAcrossProcesses(t *testing.T) {
	cfg := testConfig(t)
	cfg.FeedLease = false // a lease taken wakes Notify too: TestFeedLease
	writer := openStore(t, cfg)
	listener := openStore(t, cfg)
	quiet := cfg
	quiet.Listen = false
	deaf := openStore(t, quiet)
	// The listener wakes once LISTEN holds.
	select {
	case <-listener.Outbox().Notify():
	case <-time.After(5 * time.Second):
		t.Fatal("the listener never woke when LISTEN took hold")
	}
	putEmit := func(s *Store, r *pipeline.Record) {
		t.Helper()
		err := s.Update(t.Context(), func(tx pipeline.Tx) error {
			if err := tx.Put(t.Context(), r); err != nil {
				return err
			}
			return tx.Emit(t.Context(), &pipeline.Change{Model: r.Model, Op: pipeline.OpUpsert, Key: r.Key, Item: r.Item, Version: r.Version, Origin: "cloud"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	putEmit(writer, rec("n", "1"))
	select {
	case <-listener.Outbox().Notify():
	case <-time.After(5 * time.Second):
		t.Fatal("no notification of another store's commit")
	}
	select {
	case <-deaf.Outbox().Notify():
		t.Fatal("a store without listen heard another store's commit")
	case <-time.After(200 * time.Millisecond):
	}
	// A commit without emits notifies nobody.
	putAll(t, writer, rec("n", "2"))
	select {
	case <-listener.Outbox().Notify():
		t.Fatal("notification of a commit that emitted nothing")
	case <-time.After(200 * time.Millisecond):
	}
}
