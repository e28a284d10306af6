//go:build !device || 386 || arm || mips || mipsle

package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/sqlite"
)

// The SQLite store and its raw baseline are in the full build (and in a
// 32-bit device build, whose cmd/iotod does not link this package: its
// other benchmarks need badger). A 64-bit device build has badger alone:
// raw_nosqlite.go.

// openSQLiteStore opens iotod's SQLite store at path, for
// `bench db --store sqlite`.
func openSQLiteStore(ctx context.Context, path, durability string) (pipeline.Store, error) {
	cfg := sqlite.NewDefaultConfig()
	cfg.Path, cfg.Durability = path, durability
	st, err := sqlite.Open(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// rawSQLiteBaseline is sqliteBaseline: this build has SQLite.
func rawSQLiteBaseline() (baseline, error) { return sqliteBaseline, nil }

// openRawSQLite opens a plain SQLite file in dir, in WAL mode with the
// synchronous level of the iotod store's durability, with one table of
// blob keys (as the store keys its records): the baselines of
// `bench db --store sqlite`.
func openRawSQLite(dir string, syncFull bool, conns int) (*sql.DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	level := "NORMAL"
	if syncFull {
		level = "FULL"
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(" + level + ")", "busy_timeout(10000)", "cache_size(-2048)"} {
		q.Add("_pragma", p)
	}
	path := filepath.Join(dir, "raw.db")
	d, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("raw sqlite %s: %w", path, err)
	}
	d.SetMaxOpenConns(conns)
	d.SetMaxIdleConns(conns)
	for _, ddl := range []string{
		"CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
		"CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, v BLOB NOT NULL)",
	} {
		if _, err := d.Exec(ddl); err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("raw sqlite %s: %w", path, err)
		}
	}
	return d, nil
}

// sqliteBaseline is raw database/sql on SQLite.
var sqliteBaseline = baseline{
	name: "raw sqlite", syncWord: "synchronous=FULL",
	singleWrites: func(ctx context.Context, dir string, syncFull bool, o DBOptions, value []byte) (float64, Dist, error) {
		d, err := openRawSQLite(dir, syncFull, 1)
		if err != nil {
			return 0, Dist{}, err
		}
		defer d.Close()
		return runWriters(ctx, o.Writers, o.Duration, func(w, i int) error {
			_, err := d.ExecContext(ctx, "INSERT INTO kv (k, v) VALUES (?, ?)", rawKey(fmt.Sprintf("w%d", w), i), value)
			return err
		})
	},
	batchedWrites: func(ctx context.Context, dir string, o DBOptions, value []byte) (float64, error) {
		d, err := openRawSQLite(dir, false, 1)
		if err != nil {
			return 0, err
		}
		defer d.Close()
		rate, _, err := runWriters(ctx, 1, o.Duration, func(_, i int) error {
			tx, err := d.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			st, err := tx.PrepareContext(ctx, "INSERT INTO kv (k, v) VALUES (?, ?)")
			if err != nil {
				return err
			}
			for j := 0; j < rawBatch; j++ {
				if _, err := st.ExecContext(ctx, rawKey("w0", i*rawBatch+j), value); err != nil {
					return err
				}
			}
			return tx.Commit()
		})
		return rate * rawBatch, err
	},
	createTxns: func(ctx context.Context, dir string, o DBOptions, value []byte) (float64, error) {
		d, err := openRawSQLite(dir, false, 1)
		if err != nil {
			return 0, err
		}
		defer d.Close()
		var seq atomic.Int64
		change := append(append([]byte{}, value...), value...)
		rate, _, err := runWriters(ctx, o.Writers, o.Duration, func(w, i int) error {
			tx, err := d.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			k := rawKey(fmt.Sprintf("w%d", w), i)
			var v []byte
			if err := tx.QueryRowContext(ctx, "SELECT v FROM kv WHERE k = ?", k).Scan(&v); !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("raw create %s: %v", k, err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO kv (k, v) VALUES (?, ?)", k, value); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO outbox (seq, v) VALUES (?, ?)", seq.Add(1), change); err != nil {
				return err
			}
			return tx.Commit()
		})
		return rate, err
	},
	loadReads: func(dir string, n int, value []byte) (rawReads, error) {
		d, err := openRawSQLite(dir, false, 4)
		if err != nil {
			return rawReads{}, err
		}
		tx, err := d.Begin()
		if err != nil {
			return rawReads{}, errors.Join(err, d.Close())
		}
		for j := 0; j < n; j++ {
			if _, err := tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", rawKey(partKey(j), j), value); err != nil {
				_ = tx.Rollback()
				return rawReads{}, errors.Join(err, d.Close())
			}
		}
		if err := tx.Commit(); err != nil {
			return rawReads{}, errors.Join(err, d.Close())
		}
		return rawReads{
			get: func(j int) error {
				var v []byte
				return d.QueryRow("SELECT v FROM kv WHERE k = ?", rawKey(partKey(j), j)).Scan(&v)
			},
			scan: func(p int) error {
				prefix := fmt.Appendf(nil, "bench#%s\x00", partKey(p*partition))
				end := append([]byte(nil), prefix...)
				end[len(end)-1]++
				rows, err := d.Query("SELECT v FROM kv WHERE k >= ? AND k < ? ORDER BY k", prefix, end)
				if err != nil {
					return err
				}
				defer rows.Close()
				c := 0
				for rows.Next() {
					var v []byte
					if err := rows.Scan(&v); err != nil {
						return err
					}
					c++
				}
				if c != partition {
					return fmt.Errorf("raw scan found %d", c)
				}
				return rows.Err()
			},
			close: d.Close,
		}, nil
	},
}
