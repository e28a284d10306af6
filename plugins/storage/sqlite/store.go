package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the storage type of this engine in configuration.
const TypeName = "sqlite"

// Store is a pipeline.Store on one SQLite database file.
type Store struct {
	cfg    Config
	log    *slog.Logger
	writer *sql.DB // one connection: SQLite has one writer
	reader *sql.DB // Config.Readers connections, query_only
	wst    *stmts  // prepared on writer
	rst    *stmts  // prepared on reader
	jobs   chan *job
	notify chan struct{}
	stop   chan struct{}
	done   sync.WaitGroup

	gate pipeline.StoreGate
}

// job is one Update waiting for the writer.
type job struct {
	ctx  context.Context
	fn   func(pipeline.Tx) error
	done chan error
}

// Open opens (creating if needed) the database at cfg.Path. A file that
// is not an iotod SQLite store, or is corrupt, is an error: it is never
// reset.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sqlite storage %s: %w", cfg.Path, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite storage %s: %w", cfg.Path, err)
	}
	syncMode := "FULL"
	if cfg.Durability == DurabilityAsync {
		syncMode = "NORMAL"
	}
	cacheKiB := int64(cfg.CacheSize) / 1024
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append([]string{
			"journal_mode(WAL)", "synchronous(" + syncMode + ")", "busy_timeout(10000)",
			fmt.Sprintf("cache_size(-%d)", cacheKiB), "foreign_keys(0)",
		}, extra...) {
			q.Add("_pragma", p)
		}
		return "file:" + (&url.URL{Path: cfg.Path}).EscapedPath() + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite storage %s: %w", cfg.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	s := &Store{cfg: cfg, log: logger, writer: w, jobs: make(chan *job, cfg.MaxBatch), notify: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := s.init(ctx); err != nil {
		_ = w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite storage %s: %w", cfg.Path, err)
	}
	r.SetMaxOpenConns(cfg.Readers)
	r.SetMaxIdleConns(cfg.Readers)
	s.reader = r
	if s.wst, err = prepare(ctx, w, false); err == nil {
		s.rst, err = prepare(ctx, r, true)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite storage %s: %w", cfg.Path, err), s.closeDBs())
	}
	s.done.Add(2)
	go s.writeLoop()
	go s.sweepLoop()
	logger.Info("sqlite storage open", "path", cfg.Path, "durability", cfg.Durability)
	return s, nil
}

// init checks the file (integrity, layout version) and creates the tables
// of a new one.
func (s *Store) init(ctx context.Context) error {
	fail := func(what string, err error) error {
		return fmt.Errorf("sqlite storage %s: %s: %w", s.cfg.Path, what, err)
	}
	var check string
	if err := s.writer.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil {
		return fail("open (is it a SQLite database?)", err)
	}
	if check != "ok" {
		return fail("integrity check", fmt.Errorf("%s: the file is corrupt; it was left as it is (restore it from a backup or move it away)", check))
	}
	var tables int
	if err := s.writer.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").Scan(&tables); err != nil {
		return fail("read schema", err)
	}
	if tables > 0 {
		var v int
		err := s.writer.QueryRowContext(ctx, "SELECT value FROM iotod_meta WHERE name = 'schema'").Scan(&v)
		if err != nil {
			return fail("read layout version", fmt.Errorf("%w (a SQLite file that is not an iotod store: it was left as it is)", err))
		}
		if v != schemaVersion {
			return fail("layout", fmt.Errorf("version %d, this iotod reads version %d", v, schemaVersion))
		}
		return nil
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fail("create tables", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range schemaDDL {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fail("create tables", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO iotod_meta (name, value) VALUES ('schema', ?)", schemaVersion); err != nil {
		return fail("create tables", err)
	}
	if err := tx.Commit(); err != nil {
		return fail("create tables", err)
	}
	return nil
}

// enter admits an operation unless the store is closed; leave ends it.
func (s *Store) enter() error {
	return s.gate.Enter("sqlite storage " + s.cfg.Path)
}

func (s *Store) leave() { s.gate.Leave() }

// View runs fn on a read-only snapshot.
func (s *Store) View(ctx context.Context, fn func(tx pipeline.ReadTx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite storage %s: begin: %w", s.cfg.Path, err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(&readTx{q: tx, st: &bound{tx: tx, all: s.rst}, now: nowMillis()})
}

// Update runs fn in a transaction that it may share with the updates of
// other writers waiting at the same time (each in its own savepoint) and
// returns once that transaction committed (on disk with durability sync).
func (s *Store) Update(ctx context.Context, fn func(tx pipeline.Tx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.jobs <- j
	return <-j.done
}

// Outbox returns the store's outbox.
func (s *Store) Outbox() pipeline.Outbox { return outbox{s} }

// Close waits for the operations in progress, stops the writer and the
// sweeper and closes the database. It is safe to call more than once.
func (s *Store) Close(_ context.Context) error {
	return s.gate.Close(func() error {
		close(s.stop)
		s.done.Wait()
		if err := s.closeDBs(); err != nil {
			return fmt.Errorf("sqlite storage: close %s: %w", s.cfg.Path, err)
		}
		s.log.Info("sqlite storage closed", "path", s.cfg.Path)
		return nil
	})
}

// closeDBs closes the statements and both connection pools.
func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range []*stmts{s.wst, s.rst} {
		if st != nil {
			errs = append(errs, st.close())
		}
	}
	return errors.Join(append(errs, s.reader.Close(), s.writer.Close())...)
}

var _ pipeline.Store = (*Store)(nil)
