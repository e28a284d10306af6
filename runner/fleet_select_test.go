package runner

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSortRange: keys[lo:hi] are what a full sort puts there, in order,
// and the rest is partitioned around them, for every range of small
// inputs in several orders and random ranges of larger ones.
func TestSortRange(t *testing.T) {
	check := func(in []int, lo, hi int) {
		t.Helper()
		want := slices.Sorted(slices.Values(in))
		got := slices.Clone(in)
		sortRange(got, lo, hi, cmp.Compare[int])
		lo, hi = max(lo, 0), min(hi, len(in))
		if lo >= hi {
			return
		}
		require.Equal(t, want[lo:hi], got[lo:hi], "n %d, range %d:%d", len(in), lo, hi)
		for _, x := range got[:lo] {
			require.Less(t, x, got[lo])
		}
		for _, x := range got[hi:] {
			require.Greater(t, x, got[hi-1])
		}
		require.Equal(t, want, slices.Sorted(slices.Values(got)), "the same keys")
	}
	for n := range 40 {
		orders := [][]int{rand.Perm(n), make([]int, n), make([]int, n)}
		for i := range n {
			orders[1][i], orders[2][i] = i, n-i
		}
		for _, in := range orders {
			for lo := range n + 1 {
				for hi := lo; hi <= n+1; hi++ {
					check(in, lo, hi)
				}
			}
		}
	}
	for range 200 {
		n := 1 + rand.IntN(5000)
		lo := rand.IntN(n)
		check(rand.Perm(n), lo, lo+rand.IntN(1200))
	}
}

// BenchmarkFleetList lists pages of an index of 10,000 devices (P11;
// iotod bench api measures them over HTTP):
//
//	go test ./runner -run '^$' -bench FleetList
func BenchmarkFleetList(b *testing.B) {
	f := newFleet(nil, "cloud", nil)
	fillFleet(b, f, 10_000, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, q := range []FleetQuery{
		{Limit: DefaultFleetLimit},
		{Limit: DefaultFleetLimit, Page: 100},
		{Limit: DefaultFleetLimit, Sort: "refused", Filter: "07", Page: 2},
		{Limit: MaxFleetLimit, Sort: "-last_seen"},
	} {
		b.Run(fmt.Sprintf("%s-%s-page%d-limit%d", q.Sort, q.Filter, q.Page, q.Limit), func(b *testing.B) {
			for b.Loop() {
				if _, err := f.List(q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// adversary is McIlroy's "killer adversary for quicksort": a comparison
// that decides the keys' order as it is asked, so that every partition
// splits off as little as it can. Devices name themselves, so a listing's
// order is theirs to choose.
type adversary struct {
	val                   []int
	gas, solid, candidate int
	compares              int
}

func newAdversary(n int) *adversary {
	a := &adversary{val: make([]int, n), gas: n, candidate: -1}
	for i := range a.val {
		a.val[i] = a.gas
	}
	return a
}

func (a *adversary) cmp(x, y int) int {
	a.compares++
	if a.val[x] == a.gas && a.val[y] == a.gas {
		if x == a.candidate {
			a.val[x], a.solid = a.solid, a.solid+1
		} else {
			a.val[y], a.solid = a.solid, a.solid+1
		}
	}
	switch {
	case a.val[x] == a.gas:
		a.candidate = x
	case a.val[y] == a.gas:
		a.candidate = y
	}
	return cmp.Compare(a.val[x], a.val[y])
}

// TestSortRangeAgainstAnAdversary: keys ordered to defeat the median of
// three cost a bounded number of comparisons (an introsort's budget of
// partitions, then a full sort), not n squared.
func TestSortRangeAgainstAnAdversary(t *testing.T) {
	const n = 5000
	a := newAdversary(n)
	keys := make([]int, n)
	for i := range keys {
		keys[i] = i
	}
	sortRange(keys, n/2-50, n/2+50, a.cmp)
	require.Less(t, a.compares, 40*n, "comparisons for a page of 100 among %d adversarial keys", n)
}
