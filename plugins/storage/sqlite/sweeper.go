package sqlite

import (
	"context"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// sweepLoop deletes expired records and their entries every
// SweepInterval (reads hide them from the moment they expire).
func (s *Store) sweepLoop() {
	defer s.done.Done()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.sweep(context.Background()); err != nil {
				s.log.Warn("sqlite storage: sweep of expired items failed", "path", s.cfg.Path, "err", err)
			}
		}
	}
}

// sweep deletes the records expired by now, through the writer.
func (s *Store) sweep(ctx context.Context) error {
	j := &job{ctx: ctx, done: make(chan error, 1), fn: func(tx pipeline.Tx) error {
		q, now := tx.(*writeTx).q, nowMillis()
		if _, err := q.ExecContext(ctx, "DELETE FROM entries WHERE (pk, sk) IN (SELECT pk, sk FROM records WHERE expires > 0 AND expires <= ?)", now); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, "DELETE FROM records WHERE expires > 0 AND expires <= ?", now)
		return err
	}}
	// The writer may be stopping with the store: do not wait on it then.
	select {
	case s.jobs <- j:
	case <-s.stop:
		return nil
	}
	select {
	case err := <-j.done:
		return err
	case <-s.stop:
		return nil
	}
}
