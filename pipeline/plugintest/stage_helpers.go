package plugintest

import (
	"slices"
	"strings"
	"testing"

	"github.com/iotod/iotod/pipeline"
)

// checkAccounting checks that out accounts for every change of in exactly
// once: passed in input order, or rejected with its model, key and a
// reason. Rejects of changes not in in are left alone. A non-nil pass is
// the exact list of Seqs that must pass; reasons maps Seqs to texts their
// reject reasons must contain.
func checkAccounting(t *testing.T, in []pipeline.Change, out *pipeline.Batch, pass []uint64, reasons map[uint64]string) {
	t.Helper()
	index := make(map[uint64]int, len(in))
	for i, c := range in {
		if _, dup := index[c.Seq]; dup {
			t.Fatalf("test input: seq %d twice", c.Seq)
		}
		index[c.Seq] = i
	}
	seen := map[uint64]string{}
	last := -1
	var passed []uint64
	for _, c := range out.Changes {
		i, ok := index[c.Seq]
		if !ok {
			t.Errorf("passed a change with seq %d that was not in the batch", c.Seq)
			continue
		}
		if was, dup := seen[c.Seq]; dup {
			t.Errorf("seq %d comes out twice (%s and passed)", c.Seq, was)
		}
		seen[c.Seq] = "passed"
		if i < last {
			t.Errorf("seq %d passed after seq %d: order changed", c.Seq, in[last].Seq)
		}
		last = max(last, i)
		passed = append(passed, c.Seq)
	}
	for _, r := range out.Rejected {
		i, ok := index[r.Seq]
		if !ok {
			continue
		}
		if was, dup := seen[r.Seq]; dup {
			t.Errorf("seq %d comes out twice (%s and rejected)", r.Seq, was)
		}
		seen[r.Seq] = "rejected"
		if c := in[i]; r.Model != c.Model || r.Key != c.Key {
			t.Errorf("reject of seq %d names %s %v, want %s %v", r.Seq, r.Model, r.Key, c.Model, c.Key)
		}
		if strings.TrimSpace(r.Reason) == "" {
			t.Errorf("reject of seq %d (%s %v) has no reason", r.Seq, r.Model, r.Key)
		}
		if want, ok := reasons[r.Seq]; ok && !strings.Contains(r.Reason, want) {
			t.Errorf("reject of seq %d: reason %q does not contain %q", r.Seq, r.Reason, want)
		}
	}
	for _, c := range in {
		if _, ok := seen[c.Seq]; !ok {
			t.Errorf("seq %d (%s %s %v) was lost: neither passed nor rejected", c.Seq, c.Op, c.Model, c.Key)
		}
	}
	if pass != nil && !slices.Equal(passed, pass) {
		t.Errorf("passed seqs %v, want %v (rejects: %s)", passed, pass, describeRejects(out.Rejected))
	}
	for seq, want := range reasons {
		if seen[seq] != "rejected" {
			t.Errorf("seq %d was %s, want rejected with %q", seq, orNone(seen[seq]), want)
		}
	}
}

func describeRejects(rs []pipeline.Reject) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strings.Join([]string{r.Model, r.Key.String(), r.Reason}, " ")
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func orNone(s string) string {
	if s == "" {
		return "lost"
	}
	return s
}
