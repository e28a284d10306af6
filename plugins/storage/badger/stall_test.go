package badger

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// TestStallDiag finds what stalls durable writes (P1): with
// IOTOD_STALL_DIAG=1 it runs 64 writers (an item and its outbox change per
// Update, durability sync; DIAG_ASYNC=1 for async) for 10s and logs, in
// time order, every write over 30ms, every group-commit sync round over
// 20ms, and each change in the number of write-ahead logs (.mem: 2 while a
// memtable flushes) and tables (.sst: compactions), then the latency
// distribution, the sync rounds' and badger's levels.
//
//	IOTOD_STALL_DIAG=1 go test -run StallDiag -v ./plugins/storage/badger/
func TestStallDiag(t *testing.T) {
	needBadger(t)
	if os.Getenv("IOTOD_STALL_DIAG") == "" {
		t.Skip("IOTOD_STALL_DIAG not set")
	}
	var mu sync.Mutex
	var slow []string
	cfg := testConfig(t.TempDir(), DurabilitySync)
	if os.Getenv("DIAG_ASYNC") != "" {
		cfg.Durability = DurabilityAsync
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Open(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	item := benchItem()
	ctx := t.Context()
	start := time.Now()
	var mu2 sync.Mutex
	var rounds []time.Duration
	if s.syncer != nil {
		inner := s.syncer.sync
		s.syncer.sync = func() error {
			t0 := time.Now()
			err := inner()
			d := time.Since(t0)
			mu2.Lock()
			rounds = append(rounds, d)
			mu2.Unlock()
			if d > 20*time.Millisecond {
				mu2.Lock()
				slow = append(slow, fmt.Sprintf("%7.3fs  FSYNC %v", t0.Sub(start).Seconds(), d.Round(time.Millisecond)))
				mu2.Unlock()
			}
			return err
		}
	}
	dur := 10 * time.Second
	var n atomic.Uint64
	var lats []time.Duration
	var wg sync.WaitGroup
	stopPoll := make(chan struct{})
	go func() {
		last := ""
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(5 * time.Millisecond):
			}
			es, _ := os.ReadDir(cfg.Path)
			mem, sst := 0, 0
			for _, e := range es {
				switch {
				case len(e.Name()) > 4 && e.Name()[len(e.Name())-4:] == ".mem":
					mem++
				case len(e.Name()) > 4 && e.Name()[len(e.Name())-4:] == ".sst":
					sst++
				}
			}
			cur := fmt.Sprintf("mem=%d sst=%d", mem, sst)
			if cur != last {
				mu.Lock()
				slow = append(slow, fmt.Sprintf("%7.3fs  state %s", time.Since(start).Seconds(), cur))
				mu.Unlock()
				last = cur
			}
		}
	}()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var own []time.Duration
			for time.Since(start) < dur {
				i := n.Add(1)
				t0 := time.Now()
				err := s.Update(ctx, func(tx pipeline.Tx) error {
					r := &pipeline.Record{
						Key:     pipeline.Key{PK: fmt.Sprintf("dev#%d", i%64), SK: fmt.Sprintf("reading#%012d", i)},
						Model:   "Reading",
						Item:    item,
						Version: pipeline.Version{Wall: time.Now().UnixMilli(), Origin: "bench"},
					}
					if err := tx.Put(ctx, r); err != nil {
						return err
					}
					return tx.Emit(ctx, &pipeline.Change{Model: r.Model, Op: pipeline.OpCreate, Key: r.Key, Item: item, Version: r.Version, Origin: "bench"})
				})
				if err != nil {
					t.Error(err)
					return
				}
				d := time.Since(t0)
				own = append(own, d)
				if d > 30*time.Millisecond {
					mu.Lock()
					slow = append(slow, fmt.Sprintf("%7.3fs %v", t0.Sub(start).Seconds(), d.Round(time.Millisecond)))
					mu.Unlock()
				}
			}
			mu.Lock()
			lats = append(lats, own...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stopPoll)
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	t.Logf("%d writes, %.0f/s, p50 %v p99 %v max %v", len(lats), float64(len(lats))/dur.Seconds(),
		lats[len(lats)/2], lats[len(lats)*99/100], lats[len(lats)-1])
	sort.Slice(rounds, func(i, j int) bool { return rounds[i] < rounds[j] })
	if len(rounds) > 0 {
		t.Logf("%d sync rounds, p50 %v p99 %v max %v", len(rounds), rounds[len(rounds)/2], rounds[len(rounds)*99/100], rounds[len(rounds)-1])
	}
	sort.Strings(slow)
	for _, l := range slow {
		t.Log("slow:", l)
	}
	t.Log(s.db.LevelsToString())
}
