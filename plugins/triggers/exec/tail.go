package exec

import (
	"strings"
	"sync"
)

// Bounds of what is kept of a run's output.
const (
	// outputKept is how much of each of stdout and stderr is kept: the
	// last bytes written. A command printing megabytes costs no more.
	outputKept = 64 << 10
	// stderrInError is how much of stderr an error quotes: its end.
	stderrInError = 1 << 10
)

// tail is an io.Writer keeping the last max bytes written and counting
// all of them.
type tail struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	total int64
}

func newTail(max int) *tail { return &tail{max: max} }

// Write keeps the end of p; it never fails, so the command is never
// stopped by a full pipe.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	t.total += int64(n)
	if n >= t.max {
		t.buf = append(t.buf[:0], p[n-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + n - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// Bytes returns a copy of what is kept and the count of all bytes written.
func (t *tail) Bytes() ([]byte, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...), t.total
}

// lastBytes is the end of b, at most n bytes, as trimmed valid UTF-8.
func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
}
