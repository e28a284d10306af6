package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

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

// DeadLetters keeps the most recent dead letters in memory and appends
// every one to a JSON-lines file (when a path is set), so they survive a
// restart and can be inspected with ordinary tools.
type DeadLetters struct {
	mu     sync.Mutex
	path   string
	keep   int
	recent []DeadLetter
	total  int64
}

func newDeadLetters(path string, keep int) *DeadLetters {
	return &DeadLetters{path: path, keep: keep}
}

// Add records letters.
func (d *DeadLetters) Add(letters ...DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.total += int64(len(letters))
	d.recent = append(d.recent, letters...)
	if over := len(d.recent) - d.keep; over > 0 {
		d.recent = append([]DeadLetter(nil), d.recent[over:]...)
	}
	if d.path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
		return fmt.Errorf("dead letters: %w", err)
	}
	f, err := os.OpenFile(d.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("dead letters: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, l := range letters {
		if err := enc.Encode(l); err != nil {
			_ = f.Close()
			return fmt.Errorf("dead letters %s: %w", d.path, err)
		}
	}
	return f.Close()
}

// Recent returns the most recent dead letters, oldest first, and the
// total count since start.
func (d *DeadLetters) Recent() ([]DeadLetter, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DeadLetter(nil), d.recent...), d.total
}
