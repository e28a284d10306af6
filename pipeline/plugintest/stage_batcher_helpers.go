package plugintest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/iotod/iotod/pipeline"
)

// batchRecorder drives a batcher under test and keeps every batch it
// returned, in order.
type batchRecorder struct {
	t      *testing.T
	b      pipeline.Batcher
	limits BatcherLimits
	out    []*pipeline.Batch
	ids    map[string]bool
}

// add calls Add, failing the test on an error, and returns the full batches.
func (r *batchRecorder) add(b *pipeline.Batch) []*pipeline.Batch {
	r.t.Helper()
	full, err := r.b.Add(r.t.Context(), b)
	if err != nil {
		r.t.Fatalf("Add: %v", err)
	}
	r.record(full)
	return full
}

// cut calls Cut, failing the test on an error, and returns the batches.
func (r *batchRecorder) cut() []*pipeline.Batch {
	r.t.Helper()
	bs, err := r.b.Cut(r.t.Context())
	if err != nil {
		r.t.Fatalf("Cut: %v", err)
	}
	r.record(bs)
	if !r.b.Due().IsZero() {
		r.t.Errorf("Due() after Cut = %v, want zero", r.b.Due())
	}
	return bs
}

func (r *batchRecorder) record(bs []*pipeline.Batch) {
	r.t.Helper()
	for _, b := range bs {
		if b == nil {
			r.t.Fatal("a nil batch in the batches returned")
		}
		r.out = append(r.out, b)
	}
}

// changes lists every change out, in order.
func (r *batchRecorder) changes() []pipeline.Change {
	var out []pipeline.Change
	for _, b := range r.out {
		out = append(out, b.Changes...)
	}
	return out
}

// seqs lists the seqs of every change out, in order.
func (r *batchRecorder) seqs() []uint64 {
	var out []uint64
	for _, c := range r.changes() {
		out = append(out, c.Seq)
	}
	return out
}

func (r *batchRecorder) rejected(seq uint64) bool {
	for _, b := range r.out {
		for _, rj := range b.Rejected {
			if rj.Seq == seq {
				return true
			}
		}
	}
	return false
}

// coversExactly checks that the batches out cover exactly want, each seq
// in one batch only.
func (r *batchRecorder) coversExactly(want ...uint64) {
	r.t.Helper()
	var got []uint64
	in := map[uint64]int{}
	for i, b := range r.out {
		for _, s := range b.Covers {
			if j, dup := in[s]; dup {
				r.t.Errorf("seq %d is covered by batches %d and %d; settle it once", s, j, i)
			}
			in[s] = i
			got = append(got, s)
		}
	}
	slices.Sort(got)
	got = slices.Compact(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		r.t.Errorf("covers = %v, want %v", got, want)
	}
}

// checkWellFormed checks every batch out: protocol version, a unique id,
// valid changes, its own changes covered, within Count and, with more
// than one change, within Limit as JSON; and no batch that carries nothing.
func (r *batchRecorder) checkWellFormed() {
	r.t.Helper()
	for i, b := range r.out {
		where := fmt.Sprintf("batch %d (%s)", i, b.ID)
		if b.V != pipeline.ProtocolVersion {
			r.t.Errorf("%s: v = %d, want %d", where, b.V, pipeline.ProtocolVersion)
		}
		if b.ID == "" || r.ids[b.ID] {
			r.t.Errorf("%s: id empty or used before", where)
		}
		r.ids[b.ID] = true
		if len(b.Changes)+len(b.Covers)+len(b.Rejected) == 0 {
			r.t.Errorf("%s carries nothing", where)
		}
		if len(b.Changes) > 0 {
			if err := b.Validate(); err != nil {
				r.t.Errorf("%s: %v", where, err)
			}
		}
		for _, c := range b.Changes {
			if !slices.Contains(b.Covers, c.Seq) {
				r.t.Errorf("%s: carries seq %d but does not cover it", where, c.Seq)
			}
		}
		if r.limits.Count > 0 && len(b.Changes) > r.limits.Count {
			r.t.Errorf("%s: %d changes, over the count of %d", where, len(b.Changes), r.limits.Count)
		}
		if len(b.Changes) > 1 && r.limits.Limit > 0 {
			data, err := json.Marshal(b)
			if err != nil {
				r.t.Fatalf("%s: encode: %v", where, err)
			}
			if len(data) > int(r.limits.Limit) {
				r.t.Errorf("%s: %d changes make %d bytes of JSON, over the limit of %d", where, len(b.Changes), len(data), r.limits.Limit)
			}
		}
	}
}

// chg is an upsert of the Store model at pk, with value in its item.
func chg(seq uint64, pk, value string) pipeline.Change {
	return stageChange(seq, "Store", pipeline.OpUpsert, pk, "store#", fmt.Sprintf(`{"key":%q,"value":%q}`, pk, value))
}

// inBatch is a batch of changes covering their seqs, as a pipeline hands a
// batcher.
func inBatch(cs ...pipeline.Change) *pipeline.Batch {
	b := &pipeline.Batch{Changes: cs}
	for _, c := range cs {
		b.Covers = append(b.Covers, c.Seq)
	}
	return b
}

func batchSizes(bs []*pipeline.Batch) []int {
	out := make([]int, len(bs))
	for i, b := range bs {
		out[i] = len(b.Changes)
	}
	return out
}
