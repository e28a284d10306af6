package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/iotod/iotod/pipeline"
)

// DeadLetter is a change, or a whole message, that can never be applied:
// refused by a stage, a store or the far side, or unreadable. It is kept
// so an operator can see what was refused and why.
type DeadLetter struct {
	Time     time.Time       `json:"time"`
	Pipeline string          `json:"pipeline"`
	Site     string          `json:"site,omitempty"`
	Batch    string          `json:"batch,omitempty"`
	Reject   pipeline.Reject `json:"reject"`
	// Payload is the raw message for poison messages.
	Payload string `json:"payload,omitempty"`
}

// Bounds of one dead letter's text fields, in bytes. What comes from a
// device (a reason quoting its input, a model name, a key, a raw payload)
// can be as large as the transport lets it; a letter keeps at most this
// much of each field, cut on a UTF-8 boundary and ended with "…", with
// invalid UTF-8 replaced by U+FFFD.
const (
	MaxDeadLetterReason  = 1024
	MaxDeadLetterPayload = 4096
	// MaxDeadLetterField bounds the model, the key's pk and sk, the site,
	// the batch id and the pipeline name.
	MaxDeadLetterField = 512
)

// Defaults of the dead-letter file: it is rotated when the next letter
// would take it over DefaultDeadLetterFileMax bytes, and the
// DefaultDeadLetterFiles most recent rotated files are kept
// (deadletters.1.jsonl the newest).
const (
	DefaultDeadLetterFileMax = 10 << 20
	DefaultDeadLetterFiles   = 2
)

// DeadLetterTotals counts dead letters since start.
type DeadLetterTotals struct {
	// Total is every letter added.
	Total int64 `json:"total"`
	// Truncated is the letters with a field cut to its bound or holding
	// invalid UTF-8 that was replaced.
	Truncated int64 `json:"truncated"`
	// Dropped is the letters that did not reach the file: larger than
	// the file's cap on their own, or the write failed. They are still
	// kept in memory.
	Dropped int64 `json:"dropped"`
	// Rotations is how often the file was rotated.
	Rotations int64 `json:"rotations"`
}

// DeadLetterOption sets an option of the dead-letter keeper.
type DeadLetterOption func(*DeadLetters)

// WithDeadLetterFile caps the dead-letter file at maxBytes (<= 0: the
// default) and keeps old rotated files (< 0: the default; 0: none, the
// file starts over when full).
func WithDeadLetterFile(maxBytes int64, old int) DeadLetterOption {
	return func(d *DeadLetters) {
		if maxBytes > 0 {
			d.maxBytes = maxBytes
		}
		if old >= 0 {
			d.oldFiles = old
		}
	}
}

// DeadLetters keeps the most recent dead letters in memory and appends
// every one to a JSON-lines file (when a path is set), so they survive a
// restart and can be inspected with ordinary tools. Every letter is
// bounded (see MaxDeadLetterReason); the file is capped and rotated (see
// DefaultDeadLetterFileMax), so a device sending refused changes without
// end cannot fill the disk or the memory.
type DeadLetters struct {
	mu       sync.Mutex
	path     string
	keep     int
	maxBytes int64
	oldFiles int
	recent   []DeadLetter
	totals   DeadLetterTotals
}

// newDeadLetters keeps the last keep letters in memory and appends every
// letter to path ("" for none), with the default file cap unless opts
// say otherwise.
func newDeadLetters(path string, keep int, opts ...DeadLetterOption) *DeadLetters {
	d := &DeadLetters{path: path, keep: keep, maxBytes: DefaultDeadLetterFileMax, oldFiles: DefaultDeadLetterFiles}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Add records letters, each bounded first. The in-memory list and the
// counts are updated even when writing the file fails (the error says
// why).
func (d *DeadLetters) Add(letters ...DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	bounded := make([]DeadLetter, len(letters))
	truncated := 0
	for i, l := range letters {
		var cut bool
		if bounded[i], cut = boundLetter(l); cut {
			truncated++
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.totals.Total += int64(len(bounded))
	d.totals.Truncated += int64(truncated)
	d.recent = append(d.recent, bounded...)
	if over := len(d.recent) - d.keep; over > 0 {
		d.recent = append([]DeadLetter(nil), d.recent[over:]...)
	}
	if d.path == "" {
		return nil
	}
	if err := d.write(bounded); err != nil {
		return fmt.Errorf("dead letters %s: %w", d.path, err)
	}
	return nil
}

// write appends letters to the file, rotating it whenever the next line
// would take it over the cap. Called with d.mu held.
func (d *DeadLetters) write(letters []DeadLetter) error {
	lines := make([][]byte, 0, len(letters))
	for _, l := range letters {
		line, err := json.Marshal(l)
		if err != nil || int64(len(line)+1) > d.maxBytes {
			d.totals.Dropped++ // unencodable, or larger than the whole file may be
			continue
		}
		lines = append(lines, append(line, '\n'))
	}
	if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
		d.totals.Dropped += int64(len(lines))
		return err
	}
	for len(lines) > 0 {
		n, err := d.appendLines(lines)
		lines = lines[n:]
		if err != nil {
			// Lines of a failed write may or may not be on disk: count
			// them as dropped.
			d.totals.Dropped += int64(len(lines))
			return err
		}
		if len(lines) > 0 {
			if err := d.rotate(); err != nil {
				d.totals.Dropped += int64(len(lines))
				return err
			}
			d.totals.Rotations++
		}
	}
	return nil
}

// appendLines appends as many of lines as fit under the cap to the file
// (at least one when the file is empty) and returns how many it wrote.
func (d *DeadLetters) appendLines(lines [][]byte) (int, error) {
	f, err := os.OpenFile(d.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	// The file may have been moved away, or written by an earlier run:
	// its size is what it is now.
	st, err := f.Stat()
	if err != nil {
		return 0, errors.Join(err, f.Close())
	}
	size := st.Size()
	var buf bytes.Buffer
	n := 0
	for _, line := range lines {
		if size+int64(buf.Len()+len(line)) > d.maxBytes && (size > 0 || buf.Len() > 0) {
			break
		}
		buf.Write(line)
		n++
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return 0, errors.Join(err, f.Close())
	}
	return n, f.Close()
}

// rotate moves the file to its first old name, shifting the older ones
// and removing the oldest kept; with no old files kept it removes it.
func (d *DeadLetters) rotate() error {
	if d.oldFiles <= 0 {
		return ignoreMissing(os.Remove(d.path))
	}
	if err := ignoreMissing(os.Remove(d.oldPath(d.oldFiles))); err != nil {
		return err
	}
	for i := d.oldFiles - 1; i >= 1; i-- {
		if err := ignoreMissing(os.Rename(d.oldPath(i), d.oldPath(i+1))); err != nil {
			return err
		}
	}
	return os.Rename(d.path, d.oldPath(1))
}

// oldPath is the name of the i-th old file: deadletters.jsonl becomes
// deadletters.1.jsonl.
func (d *DeadLetters) oldPath(i int) string {
	ext := filepath.Ext(d.path)
	return strings.TrimSuffix(d.path, ext) + "." + strconv.Itoa(i) + ext
}

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Recent returns the most recent dead letters, oldest first, and the
// total count since start.
func (d *DeadLetters) Recent() ([]DeadLetter, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DeadLetter(nil), d.recent...), d.totals.Total
}

// Totals returns the counts since start: letters, truncated, dropped
// from the file, rotations.
func (d *DeadLetters) Totals() DeadLetterTotals {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.totals
}

// boundLetter bounds every text field of l; cut says whether any
// changed.
func boundLetter(l DeadLetter) (DeadLetter, bool) {
	changed := false
	b := func(s string, limit int) string {
		out, cut := boundText(s, limit)
		changed = changed || cut
		return out
	}
	l.Pipeline = b(l.Pipeline, MaxDeadLetterField)
	l.Site = b(l.Site, MaxDeadLetterField)
	l.Batch = b(l.Batch, MaxDeadLetterField)
	l.Reject.Model = b(l.Reject.Model, MaxDeadLetterField)
	l.Reject.Key.PK = b(l.Reject.Key.PK, MaxDeadLetterField)
	l.Reject.Key.SK = b(l.Reject.Key.SK, MaxDeadLetterField)
	l.Reject.Reason = b(l.Reject.Reason, MaxDeadLetterReason)
	l.Payload = b(l.Payload, MaxDeadLetterPayload)
	return l, changed
}

const ellipsis = "…"

// boundText returns s as valid UTF-8 (each run of invalid bytes replaced
// by U+FFFD) of at most limit bytes: when longer, it is cut on a rune
// boundary and ends with "…" (limit counts the ellipsis too). changed
// says whether s was altered.
func boundText(s string, limit int) (string, bool) {
	if len(s) <= limit && utf8.ValidString(s) {
		return s, false
	}
	cut := false
	// Look at no more of s than can end up in the result: every rune
	// kept is at least one byte of the input.
	if len(s) > limit+utf8.UTFMax {
		s, cut = s[:limit+utf8.UTFMax], true
	}
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	if !cut && len(s) <= limit {
		return s, true
	}
	n := max(limit-len(ellipsis), 0)
	if n >= len(s) {
		n = len(s)
	} else {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
	}
	if limit < len(ellipsis) {
		return s[:n], true
	}
	return s[:n] + ellipsis, true
}
