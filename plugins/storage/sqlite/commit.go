package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// writeLoop is the store's one writer: it takes the updates waiting, up
// to MaxBatch, and commits them in one transaction.
func (s *Store) writeLoop() {
	defer s.done.Done()
	batch := make([]*job, 0, s.cfg.MaxBatch)
	for {
		select {
		case <-s.stop:
			return
		case j := <-s.jobs:
			batch = append(batch[:0], j)
		}
	more:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case j := <-s.jobs:
				batch = append(batch, j)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// commit runs batch in one transaction, each update in a savepoint of its
// own: one that fails (or whose caller gave up) is rolled back alone and
// gets its error; the others share the commit and its error, if any.
func (s *Store) commit(batch []*job) {
	errs := make([]error, len(batch))
	var emitted bool
	err := func() error {
		ctx := context.Background() // a caller's cancellation must not abort the others' commit
		tx, err := s.writer.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlite storage %s: begin: %w", s.cfg.Path, err)
		}
		defer func() { _ = tx.Rollback() }()
		st := &bound{tx: tx, all: s.wst}
		exec := func(what string, stmt *sql.Stmt) error {
			if _, err := st.stmt(ctx, stmt).ExecContext(ctx); err != nil {
				return fmt.Errorf("sqlite storage %s: %s: %w", s.cfg.Path, what, err)
			}
			return nil
		}
		for i, j := range batch {
			if err := j.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if err := exec("savepoint", s.wst.savepoint); err != nil {
				return err
			}
			t := &writeTx{readTx: readTx{q: tx, st: st, now: nowMillis()}}
			ferr := j.fn(t)
			if ferr == nil {
				ferr = t.writeEmits(ctx)
			}
			if ferr != nil {
				errs[i] = ferr
				if err := exec("rollback to savepoint", s.wst.rollbackTo); err != nil {
					return err
				}
			} else if len(t.emits) > 0 {
				emitted = true
			}
			if err := exec("release savepoint", s.wst.release); err != nil {
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite storage %s: commit: %w", s.cfg.Path, writeErr(err))
		}
		return nil
	}()
	for i, j := range batch {
		if errs[i] == nil {
			errs[i] = err
		}
		j.done <- errs[i]
	}
	if err == nil && emitted {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// writeErr marks a full disk, which the caller can do nothing about in
// the moment, as such; the transaction is rolled back and nothing stored
// is touched.
func writeErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, full := range []string{"SQLITE_FULL", "database or disk is full"} {
		if strings.Contains(msg, full) {
			return fmt.Errorf("%w (the disk is full: nothing of this update was written)", err)
		}
	}
	return err
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// queryer is what reads need of a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
