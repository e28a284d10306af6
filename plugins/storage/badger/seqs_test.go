package badger

import "testing"

func TestSeqTrackerWatermark(t *testing.T) {
	tr := newSeqTracker(10, 4)
	a := tr.alloc(1) // 11
	b := tr.alloc(2) // 12, 13
	c := tr.alloc(1) // 14
	if a != 11 || b != 12 || c != 14 {
		t.Fatalf("alloc: %d %d %d", a, b, c)
	}
	check := func(step string, mark, last uint64, depth int64) {
		t.Helper()
		m, l, d := tr.visible()
		if m != mark || l != last || d != depth {
			t.Fatalf("%s: mark %d last %d depth %d, want %d %d %d", step, m, l, d, mark, last, depth)
		}
	}
	check("nothing resolved", 10, 10, 4)
	tr.resolve(c, 1, true)
	tr.resolve(b, 2, true)
	check("11 in flight", 10, 10, 4) // 12-14 committed but 11 may still commit
	tr.resolve(a, 1, false)
	check("11 aborted", 14, 14, 7)
	d := tr.alloc(1) // 15
	tr.resolve(d, 1, false)
	check("15 aborted", 15, 14, 7)
	tr.trimmed(3)
	check("trimmed", 15, 14, 4)
}
