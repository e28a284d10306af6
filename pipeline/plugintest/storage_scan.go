package plugintest

import (
	"fmt"
	"testing"

	"github.com/iotod/iotod/pipeline"
)

// sortCases are sort conditions over the sort keys a b b1 b2 c d.
var sortCases = []struct {
	cond pipeline.SortCond
	want []string
}{
	{pipeline.SortCond{}, []string{"a", "b", "b1", "b2", "c", "d"}},
	{pipeline.SortCond{Op: pipeline.SortBegins, Values: []string{"b"}}, []string{"b", "b1", "b2"}},
	{pipeline.SortCond{Op: pipeline.SortBegins, Values: []string{""}}, []string{"a", "b", "b1", "b2", "c", "d"}},
	{pipeline.SortCond{Op: pipeline.SortBetween, Values: []string{"b1", "c"}}, []string{"b1", "b2", "c"}},
	{pipeline.SortCond{Op: pipeline.SortBetween, Values: []string{"b0", "b9"}}, []string{"b1", "b2"}},
	{pipeline.SortCond{Op: pipeline.SortBetween, Values: []string{"c", "b"}}, nil},
	{pipeline.SortCond{Op: pipeline.SortLT, Values: []string{"b1"}}, []string{"a", "b"}},
	{pipeline.SortCond{Op: pipeline.SortLE, Values: []string{"b1"}}, []string{"a", "b", "b1"}},
	{pipeline.SortCond{Op: pipeline.SortEQ, Values: []string{"b1"}}, []string{"b1"}},
	{pipeline.SortCond{Op: pipeline.SortEQ, Values: []string{"bb"}}, nil},
	{pipeline.SortCond{Op: pipeline.SortGE, Values: []string{"b2"}}, []string{"b2", "c", "d"}},
	{pipeline.SortCond{Op: pipeline.SortGT, Values: []string{"b2"}}, []string{"c", "d"}},
	{pipeline.SortCond{Op: pipeline.SortGT, Values: []string{"d"}}, nil},
}

var sortKeys = []string{"a", "b", "b1", "b2", "c", "d"}

// testSortConditions runs every condition forward and reverse on the
// primary index and on a secondary index with a tie on sort key "b".
func testSortConditions(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	for _, sk := range sortKeys {
		s.put(rec("s", sk), rec("g#"+sk, "item", gs1("h", sk)))
	}
	// Neighbours that must never show up.
	s.put(rec("s0", "b"), rec("r", "b"), rec("g#b-twin", "item", gs1("h", "b")), rec("g#x", "item", gs1("h0", "b")))
	for _, tc := range sortCases {
		var primary, secondary []string
		for _, sk := range tc.want {
			primary = append(primary, "s/"+sk)
			secondary = append(secondary, "g#"+sk+"/item")
			if sk == "b" {
				secondary = append(secondary, "g#b-twin/item")
			}
		}
		for _, reverse := range []bool{false, true} {
			name := fmt.Sprintf("%s %q reverse=%v", tc.cond.Op, tc.cond.Values, reverse)
			wantP, wantS := primary, secondary
			if reverse {
				wantP, wantS = reversed(primary), reversed(secondary)
			}
			sameStrings(t, "primary "+name, s.scanKeys(pipeline.Query{Hash: "s", Sort: tc.cond, Reverse: reverse}), wantP)
			sameStrings(t, "primary by name "+name, s.scanKeys(pipeline.Query{Index: pipeline.PrimaryIndex, Hash: "s", Sort: tc.cond, Reverse: reverse}), wantP)
			sameStrings(t, "gs1 "+name, s.scanKeys(pipeline.Query{Index: "gs1", Hash: "h", Sort: tc.cond, Reverse: reverse}), wantS)
		}
	}
	for _, p := range s.scan(pipeline.Query{Index: "gs1", Hash: "h", Sort: pipeline.SortCond{Op: pipeline.SortEQ, Values: []string{"c"}}}, 0) {
		if p.Hash != "h" || p.Sort != "c" || p.Key != (pipeline.Key{PK: "g#c", SK: "item"}) {
			t.Fatalf("gs1 position %+v", p)
		}
	}
	for _, p := range s.scan(pipeline.Query{Hash: "s", Sort: pipeline.SortCond{Op: pipeline.SortEQ, Values: []string{"c"}}}, 0) {
		if p.Hash != "s" || p.Sort != "c" || p.Key != (pipeline.Key{PK: "s", SK: "c"}) {
			t.Fatalf("primary position %+v", p)
		}
	}
}

// paged walks q in pages of size, resuming after the last position.
func (h *storeHandle) paged(q pipeline.Query, size int) []pipeline.Position {
	h.t.Helper()
	var out []pipeline.Position
	for range 1000 {
		page := h.scan(q, size)
		out = append(out, page...)
		if len(page) < size {
			return out
		}
		last := page[len(page)-1]
		q.After = &last
	}
	h.t.Fatal("pagination does not end")
	return nil
}

func testPagination(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	for i := range 23 {
		s.put(rec("page", fmt.Sprintf("k%02d", i), gs1("pg", fmt.Sprintf("s%d", i%5))))
	}
	queries := map[string]pipeline.Query{
		"primary":        {Hash: "page"},
		"primary begins": {Hash: "page", Sort: pipeline.SortCond{Op: pipeline.SortBegins, Values: []string{"k1"}}},
		"gs1 ties":       {Index: "gs1", Hash: "pg"},
		"gs1 between":    {Index: "gs1", Hash: "pg", Sort: pipeline.SortCond{Op: pipeline.SortBetween, Values: []string{"s1", "s3"}}},
	}
	wantLen := map[string]int{"primary": 23, "primary begins": 10, "gs1 ties": 23, "gs1 between": 14}
	for name, q := range queries {
		for _, reverse := range []bool{false, true} {
			q.Reverse = reverse
			full := keyStrings(s.scan(q, 0))
			if len(full) != wantLen[name] {
				t.Fatalf("%s reverse=%v: %d records, want %d", name, reverse, len(full), wantLen[name])
			}
			for _, size := range []int{1, 4, 5} {
				got := keyStrings(s.paged(q, size))
				sameStrings(t, fmt.Sprintf("%s reverse=%v pages of %d", name, reverse, size), got, full)
			}
		}
	}
	// Ties on the sort key are ordered by primary key.
	want := []string{"page/k00", "page/k05", "page/k10", "page/k15", "page/k20"}
	got := s.scanKeys(pipeline.Query{Index: "gs1", Hash: "pg", Sort: pipeline.SortCond{Op: pipeline.SortEQ, Values: []string{"s0"}}})
	sameStrings(t, "gs1 ties order", got, want)
}

func testHashPrefix(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	for _, k := range [][2]string{{"dev#1", "a"}, {"dev#1", "b"}, {"dev#10", "a"}, {"dev#2", "a"}, {"dev#2", "c"}, {"dev", "a"}, {"dew#1", "a"}, {"de", "a"}} {
		s.put(rec(k[0], k[1], gs1("x"+k[0], k[1])))
	}
	all := []string{"dev#1/a", "dev#1/b", "dev#10/a", "dev#2/a", "dev#2/c"}
	onlyA := []string{"dev#1/a", "dev#10/a", "dev#2/a"}
	eqA := pipeline.SortCond{Op: pipeline.SortEQ, Values: []string{"a"}}
	for _, tc := range []struct {
		q    pipeline.Query
		want []string
	}{
		{pipeline.Query{Hash: "dev#", HashPrefix: true}, all},
		{pipeline.Query{Hash: "dev#", HashPrefix: true, Sort: eqA}, onlyA},
		{pipeline.Query{Index: "gs1", Hash: "xdev#", HashPrefix: true}, all},
		{pipeline.Query{Index: "gs1", Hash: "xdev#", HashPrefix: true, Sort: eqA}, onlyA},
		{pipeline.Query{Hash: "dev#3", HashPrefix: true}, nil},
		{pipeline.Query{Hash: "", HashPrefix: true, Sort: pipeline.SortCond{Op: pipeline.SortGT, Values: []string{"a"}}}, []string{"dev#1/b", "dev#2/c"}},
	} {
		for _, reverse := range []bool{false, true} {
			q, want := tc.q, tc.want
			q.Reverse = reverse
			if reverse {
				want = reversed(want)
			}
			name := fmt.Sprintf("index %q prefix %q sort %+v reverse=%v", q.Index, q.Hash, q.Sort, reverse)
			sameStrings(t, name, s.scanKeys(q), want)
			sameStrings(t, name+" in pages of 2", keyStrings(s.paged(q, 2)), want)
		}
	}
}

func testSecondaryIndexMaintenance(t *testing.T, env storeEnv) {
	s := newStore(t, env)
	byH := func(h string) []string { return s.scanKeys(pipeline.Query{Index: "gs1", Hash: h}) }
	byGS2 := func(h string) []string { return s.scanKeys(pipeline.Query{Index: "gs2", Hash: h}) }
	r := rec("m", "1", gs1("h1", "s1"), pipeline.IndexEntry{Index: "gs2", Hash: "k", Sort: "v"})
	s.put(r, rec("m", "2", gs1("h1", "s0")))
	sameStrings(t, "gs1 h1", byH("h1"), []string{"m/2", "m/1"})
	sameStrings(t, "gs2 k", byGS2("k"), []string{"m/1"})

	s.put(rec("m", "1", gs1("h2", "s2")))
	sameStrings(t, "gs1 h1 after move", byH("h1"), []string{"m/2"})
	sameStrings(t, "gs1 h2 after move", byH("h2"), []string{"m/1"})
	sameStrings(t, "gs2 k after move", byGS2("k"), nil)

	s.put(rec("m", "1", gs1("h2", "s1")))
	if n := len(byH("h2")); n != 1 {
		t.Fatalf("gs1 h2 after sort change: %d entries, want 1", n)
	}
	s.put(rec("m", "1"))
	sameStrings(t, "gs1 h2 without indexes", byH("h2"), nil)

	s.put(rec("m", "1", gs1("h3", "s")))
	if err := s.Update(t.Context(), func(tx pipeline.Tx) error {
		return tx.Delete(t.Context(), pipeline.Key{PK: "m", SK: "1"})
	}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	sameStrings(t, "gs1 h3 after delete", byH("h3"), nil)
	sameStrings(t, "gs1 h1 untouched", byH("h1"), []string{"m/2"})
}
