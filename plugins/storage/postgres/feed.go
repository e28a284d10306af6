package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// feedLease lets one store at a time, among the processes sharing a
// schema, read its outbox: the down feed. It is a session-level advisory
// lock held on a connection of its own, so PostgreSQL releases it the
// moment that session ends (the process is killed, the network fails);
// another process then takes it within feedRetry and sends what the
// outbox still holds from its first change. Without the lease every
// worker would send every change (acks reach each worker for its own
// sends only, so nothing would be lost, but every device would get every
// change once per worker).
type feedLease struct {
	s   *Store
	cc  *pgx.ConnConfig
	key int64

	mu    sync.Mutex
	conn  *pgx.Conn // holds the lock while held
	held  bool
	tried time.Time
}

// feedRetry is how often a store without the lease tries to take it.
const feedRetry = 2 * time.Second

// holds says whether this store reads the outbox, taking the lease when
// it is free (at most every feedRetry) and checking that a held lease's
// session is alive.
func (f *feedLease) holds(ctx context.Context) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held {
		if err := f.conn.Ping(ctx); err == nil {
			return true
		}
		if ctx.Err() != nil {
			return true // the caller gave up, not the session
		}
		f.s.log.Warn("postgres storage: the outbox lease's session ended: another worker may take the feed", "where", f.s.where)
		f.dropLocked()
	}
	if time.Since(f.tried) < feedRetry {
		return false
	}
	f.tried = time.Now()
	return f.takeLocked(ctx)
}

// takeLocked tries the lock on a (new) session of its own.
func (f *feedLease) takeLocked(ctx context.Context) bool {
	if f.conn == nil {
		cctx, cancel := context.WithTimeout(ctx, f.s.cfg.ConnectTimeout)
		conn, err := pgx.ConnectConfig(cctx, f.cc)
		cancel()
		if err != nil {
			return false
		}
		f.conn = conn
	}
	var ok bool
	if err := f.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", f.key).Scan(&ok); err != nil {
		f.dropLocked()
		return false
	}
	if ok {
		f.held = true
		f.s.log.Info("postgres storage: this worker reads the outbox (the down feed)", "where", f.s.where, "schema", f.s.cfg.Schema)
	}
	return ok
}

// dropLocked closes the lease's session, which releases the lock.
func (f *feedLease) dropLocked() {
	if f.conn != nil {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = f.conn.Close(cctx)
		cancel()
	}
	f.conn, f.held = nil, false
}

// loop tries to take a free lease every feedRetry and wakes Notify when
// it does, so the sender reads what the outbox holds even when no commit
// wakes it.
func (f *feedLease) loop(stop <-chan struct{}) {
	defer f.s.done.Done()
	t := time.NewTicker(feedRetry)
	defer t.Stop()
	for {
		select {
		case <-stop:
			f.mu.Lock()
			f.dropLocked()
			f.mu.Unlock()
			return
		case <-t.C:
			f.mu.Lock()
			had := f.held
			f.mu.Unlock()
			if !had && f.holds(context.Background()) {
				f.s.wake()
			}
		}
	}
}
