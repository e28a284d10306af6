package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// stmts are the statements of the read and write paths, prepared once per
// connection: SQLite's parser costs more than most statements it runs.
type stmts struct {
	get                                        *sql.Stmt
	put, delRecord, delEntries, insEntry, emit *sql.Stmt
	savepoint, release, rollbackTo             *sql.Stmt
}

var writeSQL = map[string]string{
	"get":        "SELECT " + recordColumns + " FROM records WHERE pk = ? AND sk = ?",
	"put":        "INSERT OR REPLACE INTO records (" + recordColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	"delRecord":  "DELETE FROM records WHERE pk = ? AND sk = ?",
	"delEntries": "DELETE FROM entries WHERE pk = ? AND sk = ?",
	"insEntry":   "INSERT OR REPLACE INTO entries (ix, hash, sort, pk, sk) VALUES (?, ?, ?, ?, ?)",
	"emit":       "INSERT INTO outbox (model, op, pk, sk, item, wall, counter, vorigin, origin, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
	"savepoint":  "SAVEPOINT u",
	"release":    "RELEASE u",
	"rollbackTo": "ROLLBACK TO u",
}

// prepare prepares the write path's statements on d, or only get when
// readOnly.
func prepare(ctx context.Context, d *sql.DB, readOnly bool) (*stmts, error) {
	s := &stmts{}
	targets := map[string]**sql.Stmt{"get": &s.get}
	if !readOnly {
		for name, p := range map[string]**sql.Stmt{"put": &s.put, "delRecord": &s.delRecord, "delEntries": &s.delEntries,
			"insEntry": &s.insEntry, "emit": &s.emit, "savepoint": &s.savepoint, "release": &s.release, "rollbackTo": &s.rollbackTo} {
			targets[name] = p
		}
	}
	for name, p := range targets {
		st, err := d.PrepareContext(ctx, writeSQL[name])
		if err != nil {
			return nil, errors.Join(fmt.Errorf("prepare %s: %w", name, err), s.close())
		}
		*p = st
	}
	return s, nil
}

func (s *stmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.get, s.put, s.delRecord, s.delEntries, s.insEntry, s.emit, s.savepoint, s.release, s.rollbackTo} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// bound is a transaction's view of the prepared statements: each bound to
// the transaction's connection once.
type bound struct {
	tx    *sql.Tx
	all   *stmts
	cache map[*sql.Stmt]*sql.Stmt
}

func (b *bound) stmt(ctx context.Context, st *sql.Stmt) *sql.Stmt {
	if s, ok := b.cache[st]; ok {
		return s
	}
	if b.cache == nil {
		b.cache = map[*sql.Stmt]*sql.Stmt{}
	}
	s := b.tx.StmtContext(ctx, st)
	b.cache[st] = s
	return s
}
