package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// errStalled is wrapped when a device acknowledged no catch-up batch for
// the window's stall time.
var errStalled = errors.New("catch-up stalled")

// ackWindow paces one device's catch-up by the device's acks: the cloud
// sends a catch-up batch only while fewer than maxBatches, and fewer than
// maxBytes of payload, are sent and not yet acknowledged. So a catch-up of
// a million changes waits in the cloud's store, not in the broker's queue
// or the device's memory: the device pulls it at the pace it applies.
type ackWindow struct {
	maxBatches int
	maxBytes   int
	// stall is how long the window waits without an ack before giving up:
	// the device went away (it asks again when it comes back).
	stall time.Duration

	mu    sync.Mutex
	out   map[string]int // batch id -> payload bytes
	bytes int
	acked chan struct{} // signalled on each ack
}

func newAckWindow(maxBatches, maxBytes int, stall time.Duration) *ackWindow {
	return &ackWindow{maxBatches: maxBatches, maxBytes: maxBytes, stall: stall,
		out: map[string]int{}, acked: make(chan struct{}, 1)}
}

// wait returns once another batch may be sent, or with an error when ctx
// ends or no ack came for stall.
func (w *ackWindow) wait(ctx context.Context, site string) error {
	timer := time.NewTimer(w.stall)
	defer timer.Stop()
	for {
		w.mu.Lock()
		open := len(w.out) < w.maxBatches && w.bytes < w.maxBytes
		w.mu.Unlock()
		if open {
			return nil
		}
		select {
		case <-w.acked:
			if !timer.Stop() {
				<-timer.C
			}
			timer.Reset(w.stall)
		case <-timer.C:
			return fmt.Errorf("%w: device %s acknowledged no catch-up batch for %s", errStalled, site, w.stall)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sent counts a batch sent.
func (w *ackWindow) sent(id string, bytes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out[id] = bytes
	w.bytes += bytes
}

// ack settles batch id, if it is one of the window's.
func (w *ackWindow) ack(id string) {
	w.mu.Lock()
	bytes, ok := w.out[id]
	if ok {
		delete(w.out, id)
		w.bytes -= bytes
	}
	w.mu.Unlock()
	if ok {
		select {
		case w.acked <- struct{}{}:
		default:
		}
	}
}
