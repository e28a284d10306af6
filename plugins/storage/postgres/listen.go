package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// listenLoop keeps a connection LISTENing to the outbox commits of every
// process on the schema (their pg_notify at commit) and wakes Notify for
// each. When the connection fails it is made again, after a pause
// doubling up to a minute; Notify is woken then, in case a commit went
// unheard.
func (s *Store) listenLoop(cc *pgx.ConnConfig) {
	defer s.done.Done()
	ctx, cancel := s.untilStop()
	defer cancel()
	pause := time.Second
	for {
		start := time.Now()
		err := s.listen(ctx, cc)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			pause = time.Second
		}
		s.log.Warn("postgres storage: listening for other processes' outbox commits failed; trying again",
			"where", s.where, "in", pause, "err", s.scrub.wrap(err))
		s.wake()
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(pause*2, time.Minute)
	}
}

// listen LISTENs on one connection until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, cc *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	s.wake() // commits made before LISTEN took hold were not heard
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload == s.cfg.Schema {
			s.wake()
		}
	}
}
