package plugintest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// BatcherLimits are the cut points the batcher suite configures.
type BatcherLimits struct {
	Delay time.Duration
	Limit pipeline.ByteSize
	Count int
}

// TestBatcher runs the conformance suite for a batching stage (a
// pipeline.Batcher) made by f; config returns a config of f with the
// limits given. Every batcher must:
//   - hold nothing at first (Due zero, Cut returns no batch) and take a nil
//     or empty batch without holding anything;
//   - coalesce changes of one key (model, pk, sk) to the latest, at the
//     latest one's place, and cover the outbox seqs of the changes it
//     dropped, plus every seq of the input's Covers, each in exactly one
//     batch;
//   - cut a batch at Count changes and before its JSON would pass Limit
//     bytes (a single change larger than Limit goes alone, or is rejected);
//   - make Due the first held input's arrival plus Delay, zero once cut;
//   - carry the rejects it is given into exactly one batch it returns, and
//     make them due like changes;
//   - return well-formed batches: protocol version, unique ids, the site
//     of the input (when set), changes as given;
//   - on a done context, either fail Add and hold nothing of that batch, or
//     take it all.
func TestBatcher(t *testing.T, f pipeline.Factory, config func(BatcherLimits) pipeline.Config) {
	t.Run("Factory", func(t *testing.T) { testFactory(t, f) })
	roomy := BatcherLimits{Delay: time.Hour, Limit: 1 << 20, Count: 1000}
	tests := []struct {
		name   string
		limits BatcherLimits
		fn     func(t *testing.T, r *batchRecorder)
	}{
		{"Empty", roomy, testBatcherEmpty},
		{"Coalesce", roomy, testBatcherCoalesce},
		{"CoversUnion", roomy, testBatcherCovers},
		{"CutByCount", BatcherLimits{Delay: time.Hour, Limit: 1 << 20, Count: 3}, testBatcherCount},
		{"CutByLimit", BatcherLimits{Delay: time.Hour, Limit: 2048, Count: 1000}, testBatcherLimit},
		{"Due", roomy, testBatcherDue},
		{"DueNoDelay", BatcherLimits{Limit: 1 << 20, Count: 1000}, testBatcherDueNoDelay},
		{"RejectsCarried", BatcherLimits{Delay: time.Hour, Limit: 1 << 20, Count: 2}, testBatcherRejects},
		{"Site", roomy, testBatcherSite},
		{"Cancel", roomy, testBatcherCancel},
		{"Random", BatcherLimits{Delay: time.Hour, Limit: 4096, Count: 7}, testBatcherRandom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(tc.limits)
			b := createStage[pipeline.Batcher](t, f, cfg)
			r := &batchRecorder{t: t, b: b, limits: tc.limits, ids: map[string]bool{}}
			tc.fn(t, r)
			r.checkWellFormed()
		})
	}
}

func testBatcherEmpty(t *testing.T, r *batchRecorder) {
	if !r.b.Due().IsZero() {
		t.Errorf("Due() of a new batcher = %v, want zero", r.b.Due())
	}
	r.add(nil)
	r.add(&pipeline.Batch{})
	if !r.b.Due().IsZero() {
		t.Errorf("Due() after adding nothing = %v, want zero", r.b.Due())
	}
	if got := r.cut(); len(got) != 0 {
		t.Errorf("Cut() with nothing held returned %d batches", len(got))
	}
}

func testBatcherCoalesce(t *testing.T, r *batchRecorder) {
	r.add(inBatch(chg(1, "a", "v1"), chg(2, "b", "v1")))
	r.add(inBatch(chg(3, "a", "v2"), chg(4, "c", "v1"), chg(5, "b", "v2"), chg(6, "a", "v3")))
	r.cut()
	if got, want := r.seqs(), []uint64{4, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("coalesced seqs = %v, want %v (one per key, latest, at its latest place)", got, want)
	}
	r.coversExactly(1, 2, 3, 4, 5, 6)
}

func testBatcherCovers(t *testing.T, r *batchRecorder) {
	b1 := inBatch(chg(1, "a", "v1"))
	b1.Covers = []uint64{1, 90, 91}
	b2 := inBatch(chg(2, "b", "v1"))
	b2.Covers = []uint64{2, 92}
	r.add(b1)
	r.add(b2)
	r.add(&pipeline.Batch{Covers: []uint64{93}})
	r.cut()
	r.coversExactly(1, 2, 90, 91, 92, 93)
}

func testBatcherCount(t *testing.T, r *batchRecorder) {
	full := r.add(inBatch(chg(1, "a", ""), chg(2, "b", ""), chg(3, "c", ""), chg(4, "d", ""),
		chg(5, "e", ""), chg(6, "f", ""), chg(7, "g", "")))
	if sizes := batchSizes(full); !slices.Equal(sizes, []int{3, 3}) {
		t.Errorf("Add of 7 changes with count 3 returned batches of %v, want [3 3]", sizes)
	}
	if r.b.Due().IsZero() {
		t.Error("the 7th change is held but Due() is zero")
	}
	if got := r.add(inBatch(chg(8, "h", ""))); len(got) != 0 {
		t.Errorf("Add of the 2nd held change returned %v before count was reached", batchSizes(got))
	}
	if got := r.add(inBatch(chg(9, "i", ""))); len(got) != 1 || len(got[0].Changes) != 3 {
		t.Errorf("Add of the 3rd held change returned %v, want one batch of 3", batchSizes(got))
	}
	if !r.b.Due().IsZero() {
		t.Error("nothing is held after a full cut but Due() is not zero")
	}
	r.add(inBatch(chg(10, "j", "")))
	if got := r.cut(); len(got) != 1 || len(got[0].Changes) != 1 {
		t.Errorf("Cut() of one held change returned %v, want one batch of 1", batchSizes(got))
	}
	if got, want := r.seqs(), []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(got, want) {
		t.Errorf("seqs out = %v, want %v", got, want)
	}
}

func testBatcherLimit(t *testing.T, r *batchRecorder) {
	item := strings.Repeat("x", 500)
	var in []pipeline.Change
	for seq := uint64(1); seq <= 10; seq++ {
		in = append(in, chg(seq, fmt.Sprint("k", seq), item))
	}
	full := r.add(inBatch(in...))
	if len(full) < 3 {
		t.Errorf("10 changes of >500 bytes with a 2KB limit made only %d full batches", len(full))
	}
	big := chg(11, "big", strings.Repeat("y", 3000))
	r.add(inBatch(big))
	r.add(inBatch(chg(12, "after", "")))
	r.cut()
	if got := r.seqs(); len(got) != 12 && !(len(got) == 11 && r.rejected(11)) {
		t.Errorf("seqs out = %v, want all 12 (the one over the limit alone, or rejected)", got)
	}
}

func testBatcherDue(t *testing.T, r *batchRecorder) {
	before := time.Now()
	r.add(inBatch(chg(1, "a", "")))
	after := time.Now()
	due := r.b.Due()
	if due.Before(before.Add(r.limits.Delay)) || due.After(after.Add(r.limits.Delay)) {
		t.Errorf("Due() = %v, want the first add (%v..%v) + %v", due, before, after, r.limits.Delay)
	}
	r.add(inBatch(chg(2, "b", "")))
	if got := r.b.Due(); !got.Equal(due) {
		t.Errorf("Due() moved from %v to %v on a second add; it follows the first held change", due, got)
	}
	if got := r.cut(); len(got) != 1 {
		t.Errorf("Cut() = %d batches, want 1", len(got))
	}
	if !r.b.Due().IsZero() {
		t.Errorf("Due() after Cut = %v, want zero", r.b.Due())
	}
}

func testBatcherDueNoDelay(t *testing.T, r *batchRecorder) {
	r.add(inBatch(chg(1, "a", "")))
	if due := r.b.Due(); due.IsZero() || due.After(time.Now()) {
		t.Errorf("Due() with delay 0 = %v, want now or earlier", due)
	}
	r.cut()
}

func testBatcherRejects(t *testing.T, r *batchRecorder) {
	rj := []pipeline.Reject{
		{Model: "Store", Key: pipeline.Key{PK: "r1"}, Seq: 50, Reason: "no"},
		{Model: "Store", Key: pipeline.Key{PK: "r2"}, Seq: 51, Reason: "never"},
	}
	r.add(&pipeline.Batch{Rejected: rj[:1]})
	if r.b.Due().IsZero() {
		t.Error("a held reject is not due: it would wait for the next change")
	}
	b := inBatch(chg(1, "a", ""))
	b.Rejected = rj[1:]
	r.add(b)
	r.add(inBatch(chg(2, "b", ""), chg(3, "c", "")))
	r.cut()
	var got []pipeline.Reject
	for _, out := range r.out {
		got = append(got, out.Rejected...)
	}
	if !slices.Equal(got, rj) {
		t.Errorf("rejects out = %+v, want %+v, each once", got, rj)
	}
}

func testBatcherSite(t *testing.T, r *batchRecorder) {
	b := inBatch(chg(1, "a", ""))
	b.Site = "site-1"
	r.add(b)
	for _, out := range r.cut() {
		if out.Site != "site-1" {
			t.Errorf("batch site = %q, want the input's %q", out.Site, "site-1")
		}
	}
}

func testBatcherCancel(t *testing.T, r *batchRecorder) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	full, err := r.b.Add(ctx, inBatch(chg(1, "a", ""), chg(2, "b", "")))
	r.record(full)
	r.cut()
	got := r.seqs()
	switch {
	case err != nil && len(got) != 0:
		t.Errorf("Add with a done context failed (%v) but its changes came out: %v", err, got)
	case err == nil && !slices.Equal(got, []uint64{1, 2}):
		t.Errorf("Add with a done context succeeded but the changes out are %v, want [1 2]", got)
	}
}

func testBatcherRandom(t *testing.T, r *batchRecorder) {
	rng := rand.New(rand.NewPCG(3, 7))
	var in []pipeline.Change
	latest := map[string]uint64{}
	for seq := uint64(1); seq <= 500; {
		var chunk []pipeline.Change
		for n := rng.IntN(12); n >= 0 && seq <= 500; n-- {
			k := fmt.Sprint("k", rng.IntN(20))
			c := chg(seq, k, strings.Repeat("z", rng.IntN(900)))
			chunk = append(chunk, c)
			latest[k] = seq
			seq++
		}
		in = append(in, chunk...)
		r.add(inBatch(chunk...))
	}
	r.cut()
	byKey := map[string]uint64{}
	all := make([]uint64, len(in))
	for i, c := range in {
		all[i] = c.Seq
	}
	for _, c := range r.changes() {
		if c.Seq <= byKey[c.Key.PK] {
			t.Errorf("key %s: seq %d came out after seq %d", c.Key.PK, c.Seq, byKey[c.Key.PK])
		}
		byKey[c.Key.PK] = c.Seq
		if want := in[c.Seq-1]; string(c.Item) != string(want.Item) || c.Key != want.Key || c.Version != want.Version {
			t.Errorf("seq %d came out changed", c.Seq)
		}
	}
	for k, seq := range latest {
		if byKey[k] != seq {
			t.Errorf("key %s: last out is seq %d, want the latest, %d", k, byKey[k], seq)
		}
	}
	r.coversExactly(all...)
}
