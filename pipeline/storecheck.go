package pipeline

import (
	"fmt"
	"sync"
)

// Check refuses a record no store can place: nil, an empty partition
// key, a negative expiry, or an index entry that names no secondary index.
// Errors wrap ErrInvalid; stores add their name and the operation.
func (r *Record) Check() error {
	switch {
	case r == nil:
		return fmt.Errorf("nil record: %w", ErrInvalid)
	case r.Key.PK == "":
		return fmt.Errorf("%s: empty partition key: %w", r.Key, ErrInvalid)
	case r.Expires < 0:
		return fmt.Errorf("%s: negative expiry: %w", r.Key, ErrInvalid)
	}
	for _, e := range r.Indexes {
		if e.Index == "" || e.Index == PrimaryIndex {
			return fmt.Errorf("%s: index entry names index %q: %w", r.Key, e.Index, ErrInvalid)
		}
	}
	return nil
}

// StoreGate admits a store's operations until the store closes: each
// operation runs between Enter and Leave, and Close waits for those in
// progress, runs the store's close once, and refuses what comes after
// with ErrClosed. The zero value is open.
type StoreGate struct {
	mu     sync.RWMutex
	closed bool
}

// Enter admits an operation, or returns an error naming the store (what)
// and wrapping ErrClosed; Leave must follow a nil return.
func (g *StoreGate) Enter(what string) error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return fmt.Errorf("%s: %w", what, ErrClosed)
	}
	return nil
}

// Leave ends an operation Enter admitted.
func (g *StoreGate) Leave() { g.mu.RUnlock() }

// Close waits for the operations in progress and runs closeFn, once: a
// later Close returns nil without running it.
func (g *StoreGate) Close(closeFn func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return closeFn()
}
