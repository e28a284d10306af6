package stream

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFairShare(t *testing.T) {
	for _, tc := range []struct{ open, live, want int }{
		{0, 1, 0}, {1, 1, 1}, {1, 2, 1}, {4, 1, 4}, {4, 2, 2}, {5, 2, 3}, {4, 3, 2}, {3, 0, 3},
	} {
		assert.Equal(t, tc.want, fairShare(tc.open, tc.live), "%d shards, %d workers", tc.open, tc.live)
	}
}

// A worker counts itself and the workers whose heartbeat is due within a
// refresh interval; heartbeats dead for ten lease durations are listed
// for deletion.
func TestLiveWorkers(t *testing.T) {
	s := &Source{owner: "me", cfg: Config{RefreshInterval: time.Second, LeaseDuration: 10 * time.Second}}
	now := time.UnixMilli(1_000_000)
	workers := map[string]workerItem{
		"me":    {expires: now.UnixMilli() - 50_000}, // itself, whatever its item says
		"fresh": {expires: now.UnixMilli() + 2000},
		"late":  {expires: now.UnixMilli() - 900}, // within the grace
		"gone":  {expires: now.UnixMilli() - 5000},
		"dead":  {expires: now.UnixMilli() - 100_001},
	}
	live, dead := s.liveWorkers(workers, now)
	assert.Equal(t, 3, live, "me, fresh, late")
	assert.Equal(t, []string{"dead"}, dead)
}

// Workers share the shards: a worker started while another holds all
// four gets two, handed over one per refresh; a shard is never held by
// both at once; when the second worker closes, the first takes the
// shards back at once (the leases are released and its heartbeat gone).
func TestWorkersShareTheShards(t *testing.T) {
	e := newEnv(t)
	var shards []*fakeShard
	for i := range 4 {
		shards = append(shards, &fakeShard{id: fmt.Sprintf("shard-%d", i), recs: fakeRecords(fmt.Sprintf("s%d", i))})
	}
	f := &fakeStreams{shards: shards}
	a := e.source(t, func(c *Config) { c.Streams = f; c.Worker = "a" })
	require.Eventually(t, func() bool { return len(a.Owned()) == 4 }, 10*time.Second, 20*time.Millisecond, "a alone reads every shard")

	b, err := New(fast(Config{Client: e.c, Streams: f, Table: e.table, Site: testSite, Worker: "b", Logger: testLogger(t)}))
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	stop := make(chan struct{})
	var overlaps atomic.Int64
	var overlapSeen atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			// b first: a shard b holds was let go by a before, so a later
			// look at a cannot show it unless both hold it.
			ob := b.Owned()
			oa := a.Owned()
			for _, id := range ob {
				if slices.Contains(oa, id) {
					overlaps.Add(1)
					overlapSeen.Store(id)
				}
			}
		}
	}()
	require.Eventually(t, func() bool { return len(a.Owned()) == 2 && len(b.Owned()) == 2 }, 20*time.Second, 20*time.Millisecond,
		"two each: a %v, b %v", a.Owned(), b.Owned())
	assert.Equal(t, int64(2), a.Counters().LeasesHandedOver, "a handed two shards over")
	assert.Zero(t, a.Counters().LeasesLost, "a lost no lease: it handed them over")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.Close(ctx))
	require.Eventually(t, func() bool { return len(a.Owned()) == 4 }, 10*time.Second, 20*time.Millisecond, "a takes the shards back")
	close(stop)
	<-done
	assert.Zero(t, overlaps.Load(), "a shard held by both workers at once (%v)", overlapSeen.Load())
}
