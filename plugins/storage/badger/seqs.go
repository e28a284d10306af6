package badger

import "sync"

// seqTracker allocates outbox sequence numbers and keeps the watermark:
// the highest number at or below which every allocated number is resolved
// (committed or aborted). Readers see only numbers at or below it.
type seqTracker struct {
	mu      sync.Mutex
	next    uint64          // highest number allocated
	mark    uint64          // every number <= mark is resolved
	last    uint64          // highest committed number <= mark
	depth   int64           // committed numbers <= mark still kept
	settled map[uint64]bool // resolved numbers above mark: committed?
}

func newSeqTracker(last uint64, depth int64) *seqTracker {
	return &seqTracker{next: last, mark: last, last: last, depth: depth, settled: make(map[uint64]bool)}
}

// alloc reserves n consecutive numbers and returns the first.
func (t *seqTracker) alloc(n int) uint64 {
	t.mu.Lock()
	first := t.next + 1
	t.next += uint64(n)
	t.mu.Unlock()
	return first
}

// resolve settles n numbers from first, which committed or not, and moves
// the watermark over every settled number it reaches.
func (t *seqTracker) resolve(first uint64, n int, committed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range uint64(n) {
		t.settled[first+i] = committed
	}
	for {
		ok, found := t.settled[t.mark+1]
		if !found {
			return
		}
		delete(t.settled, t.mark+1)
		t.mark++
		if ok {
			t.last = t.mark
			t.depth++
		}
	}
}

// visible returns the watermark and the highest visible committed number.
func (t *seqTracker) visible() (mark, last uint64, depth int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mark, t.last, t.depth
}

// trimmed records that n kept changes were deleted.
func (t *seqTracker) trimmed(n int64) {
	t.mu.Lock()
	t.depth -= n
	t.mu.Unlock()
}
