package badger

import (
	"context"
	"fmt"
	"sync"
)

// syncer is the group commit: writers that committed call wait, and one
// goroutine runs the sync function once for everyone who arrived before it
// began. A round collects waiters while the previous round's fsync runs.
type syncer struct {
	sync func() error

	mu   sync.Mutex
	next *syncRound // the round that has not started yet

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

type syncRound struct {
	done chan struct{}
	err  error
}

func newSyncer(fn func() error) *syncer {
	s := &syncer{
		sync: fn,
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.run()
	return s
}

// wait returns once a sync that began after the call has finished, so
// every write committed before the call is durable.
func (s *syncer) wait(ctx context.Context) error {
	s.mu.Lock()
	r := s.next
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		s.next = r
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for fsync: %w", ctx.Err())
	}
}

func (s *syncer) run() {
	defer close(s.done)
	for {
		select {
		case <-s.kick:
			s.round()
		case <-s.stop:
			s.round()
			return
		}
	}
}

func (s *syncer) round() {
	s.mu.Lock()
	r := s.next
	s.next = nil
	s.mu.Unlock()
	if r == nil {
		return
	}
	r.err = s.sync()
	close(r.done)
}

// close runs a last round for any waiter and stops the goroutine.
func (s *syncer) close() {
	close(s.stop)
	<-s.done
}
