package postgres

import (
	"context"
	"time"
)

// sweepBatch is how many expired items one sweep statement deletes.
const sweepBatch = 1000

// sweepLoop deletes expired items and their entries every SweepInterval
// (reads hide them from the moment they expire).
func (s *Store) sweepLoop() {
	defer s.done.Done()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	ctx, cancel := s.untilStop()
	defer cancel()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if n, err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("postgres storage: sweep of expired items failed", "where", s.where, "deleted", n, "err", err)
			}
		}
	}
}

// sweep deletes the items expired by now, a batch per statement (rows
// another transaction holds are skipped, for the next sweep), and
// returns how many it deleted.
func (s *Store) sweep(ctx context.Context) (int64, error) {
	q := "WITH gone AS (DELETE FROM " + s.n.items + " WHERE (pk, sk) IN (SELECT pk, sk FROM " + s.n.items +
		" WHERE expires > 0 AND expires <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING pk, sk), " +
		"ge AS (DELETE FROM " + s.n.entries + " e USING gone g WHERE e.pk = g.pk AND e.sk = g.sk) SELECT count(*) FROM gone"
	var total int64
	for {
		var n int64
		if err := s.pool.QueryRow(ctx, q, nowMillis(), sweepBatch).Scan(&n); err != nil {
			return total, s.fail("sweep", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}
