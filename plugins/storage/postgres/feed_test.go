package postgres

import (
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// TestFeedLease runs two workers on one schema: only the one holding the
// feed lease reads the outbox; when it stops (its session ends), the
// other takes the lease within seconds, is woken, and reads every change
// the outbox still holds. Without the lease both read.
func TestFeedLease(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listen = false
	a, b := openStore(t, cfg), openStore(t, cfg)
	emit := func(s *Store, sk string) {
		t.Helper()
		r := rec("feed", sk)
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
	read := func(s *Store) int {
		t.Helper()
		chs, err := s.Outbox().Read(t.Context(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(chs)
	}
	emit(a, "1")
	emit(b, "2")
	if n := read(a); n != 2 {
		t.Fatalf("the first reader read %d changes, want 2 (it takes the free lease)", n)
	}
	time.Sleep(feedRetry + 200*time.Millisecond) // b has tried again since
	if n := read(b); n != 0 {
		t.Fatalf("a worker without the lease read %d changes", n)
	}
	// a stops: b takes the lease on its own and is woken.
	drain(b.Outbox().Notify())
	if err := a.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Outbox().Notify():
	case <-time.After(3 * feedRetry):
		t.Fatal("the other worker was not woken when the lease came free")
	}
	if n := read(b); n != 2 {
		t.Fatalf("the worker that took over read %d changes, want the 2 the outbox holds", n)
	}

	open := cfg
	open.FeedLease = false
	c, d := openStore(t, open), openStore(t, open)
	if read(c) != 2 || read(d) != 2 {
		t.Fatal("without feed_lease every worker reads the outbox")
	}
}

// TestFeedLeaseSurvivesAKilledSession ends the lease holder's session
// from the server (as when its process dies or its network fails): the
// lock is released at once, and a worker takes the feed.
func TestFeedLeaseSurvivesAKilledSession(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listen = false
	a, b := openStore(t, cfg), openStore(t, cfg)
	if _, err := a.Outbox().Read(t.Context(), 0, 1); err != nil {
		t.Fatal(err)
	}
	a.feed.mu.Lock()
	pid := a.feed.conn.PgConn().PID()
	a.feed.mu.Unlock()
	if _, err := rawConn(t).Exec(t.Context(), "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * feedRetry)
	for {
		ha, hb := a.feed.holds(t.Context()), b.feed.holds(t.Context())
		if ha && hb {
			t.Fatal("two workers hold the feed")
		}
		if ha || hb {
			return // the killed session's lock was released and taken again
		}
		if time.Now().After(deadline) {
			t.Fatal("no worker took the feed after its holder's session was killed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func drain(c <-chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
