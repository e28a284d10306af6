package runner

import (
	"math/bits"
	"slices"
)

// sortRange puts in keys[lo:hi] what sorting keys by cmp would put there,
// in order, and leaves the rest only partitioned around it (what comes
// before lo before it, what comes after hi after it). A page of a
// listing needs its own devices in order, not all of them: for a page of
// 100 among 10,000 devices this takes about 2n comparisons where a full
// sort takes n log n (13n). keys must be distinct under cmp. Like an
// introsort it bounds its partitions (2 log2 n): past them, keys chosen to
// defeat the median of three (devices name themselves) get a full sort,
// not n squared comparisons.
func sortRange[T any](keys []T, lo, hi int, cmp func(a, b T) int) {
	budget := 2 * bits.Len(uint(len(keys)))
	sortRangeWithin(keys, lo, hi, cmp, &budget)
}

func sortRangeWithin[T any](keys []T, lo, hi int, cmp func(a, b T) int, budget *int) {
	lo, hi = max(lo, 0), min(hi, len(keys))
	for lo < hi {
		if len(keys) <= 24 || (lo == 0 && hi == len(keys)) || *budget <= 0 {
			slices.SortFunc(keys, cmp)
			return
		}
		*budget--
		p := partitionKeys(keys, cmp)
		switch {
		case hi <= p: // the range is left of the pivot
			keys = keys[:p]
		case lo > p: // right of it
			keys, lo, hi = keys[p+1:], lo-p-1, hi-p-1
		default: // across it: each side's part
			sortRangeWithin(keys[:p], lo, p, cmp, budget)
			keys, lo, hi = keys[p+1:], 0, hi-p-1
		}
	}
}

// partitionKeys moves a pivot (the median of the first, middle and last
// keys) to its sorted place and returns it: the keys before it are
// smaller, the keys after it larger.
func partitionKeys[T any](keys []T, cmp func(a, b T) int) int {
	last, mid := len(keys)-1, len(keys)/2
	// The median of three at last, the others around it.
	if cmp(keys[mid], keys[0]) < 0 {
		keys[mid], keys[0] = keys[0], keys[mid]
	}
	if cmp(keys[last], keys[0]) < 0 {
		keys[last], keys[0] = keys[0], keys[last]
	}
	if cmp(keys[mid], keys[last]) < 0 {
		keys[mid], keys[last] = keys[last], keys[mid]
	}
	pivot := keys[last]
	i := 0
	for j := range last {
		if cmp(keys[j], pivot) < 0 {
			keys[i], keys[j] = keys[j], keys[i]
			i++
		}
	}
	keys[i], keys[last] = keys[last], keys[i]
	return i
}
