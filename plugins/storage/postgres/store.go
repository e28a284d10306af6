package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the storage type of this engine in configuration.
const TypeName = "postgres"

// Store is a pipeline.Store on a PostgreSQL schema. It is safe for
// concurrent use, and several Stores (processes) may share a schema.
type Store struct {
	cfg   Config
	log   *slog.Logger
	pool  *pgxpool.Pool
	n     names
	sql   statements
	where string // host:port/database, for messages (never the password)
	scrub scrubber
	// seqLock is the advisory lock key serializing outbox seqs.
	seqLock int64
	notify  chan struct{}
	stop    chan struct{}
	done    sync.WaitGroup
	// conflicts counts the updates run again after a conflict.
	conflicts atomic.Int64
	// feed is the outbox lease (nil without shared_feed: every store
	// reads the outbox).
	feed *feedLease
	// beforeCommit, when set (tests), runs after an update's outbox rows
	// are inserted, just before its commit.
	beforeCommit func()
	// sending, when set (tests), sees each batch of statements an
	// update's transaction sends.
	sending func(*pgx.Batch)

	gate pipeline.StoreGate
}

var _ pipeline.Store = (*Store)(nil)

// Open connects to the server cfg.URL names, checks (or creates, with
// create_tables) the tables in cfg.Schema and starts the sweeper of
// expired items and, with listen, the listener of other processes'
// outbox commits. An unreachable server fails within connect_timeout,
// with an error naming its host and port, retryable (not
// pipeline.Permanent); a bad config, failed authentication, a missing
// database or missing tables without create_tables are permanent.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("postgres storage: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil { // Validate parsed it: only the environment (PGSERVICE...) can fail here
		return nil, pipeline.Permanent(fmt.Errorf("%w: postgres storage: url: cannot be parsed (not shown: it may hold a password)", pipeline.ErrInvalid))
	}
	cc := pc.ConnConfig
	cc.ConnectTimeout = cfg.ConnectTimeout
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "iotod"
	}
	pc.MaxConns = int32(cfg.MaxConns)
	pc.MinConns = 0
	s := &Store{
		cfg:     cfg,
		log:     logger,
		n:       newNames(cfg.Schema),
		where:   "postgres storage " + net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))) + "/" + cc.Database,
		scrub:   newScrubber(cc.Password),
		seqLock: lockKey("outbox", cfg.Schema),
		notify:  make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	s.sql = newStatements(s.n)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, s.fail("connect", err)
	}
	s.pool = pool
	// The first connection, bounded by connect_timeout (each attempt is
	// too, inside pgx, but DNS and several addresses add up).
	pingCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+time.Second)
	err = pool.Ping(pingCtx)
	cancel()
	if err != nil {
		pool.Close()
		return nil, s.fail(fmt.Sprintf("connect (user %s, within connect_timeout %s)", cc.User, cfg.ConnectTimeout), err)
	}
	if err := s.ensureTables(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.done.Add(1)
	go s.sweepLoop()
	if cfg.Listen {
		s.done.Add(1)
		go s.listenLoop(cc.Copy())
	}
	if cfg.FeedLease {
		s.feed = &feedLease{s: s, cc: cc.Copy(), key: lockKey("feed", cfg.Schema)}
		s.done.Add(1)
		go s.feed.loop(s.stop)
	}
	logger.Info("postgres storage open", "server", net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))),
		"database", cc.Database, "user", cc.User, "schema", cfg.Schema)
	return s, nil
}

// enter admits an operation unless the store is closed; leave ends it.
func (s *Store) enter() error { return s.gate.Enter(s.where) }

func (s *Store) leave() { s.gate.Leave() }

// View runs fn in a REPEATABLE READ, READ ONLY transaction: one snapshot
// for every read of fn.
func (s *Store) View(ctx context.Context, fn func(tx pipeline.ReadTx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s.fail("view: begin", err)
	}
	defer rollback(ctx, tx)
	if err := fn(newReadTx(s, tx)); err != nil {
		return err
	}
	// Commit, not rollback: nothing was written, and an error here (a
	// dropped connection) is worth reporting.
	if err := tx.Commit(ctx); err != nil {
		return s.fail("view: commit", err)
	}
	return nil
}

// Update runs fn in a SERIALIZABLE transaction: PostgreSQL aborts it
// (SQLSTATE 40001) when a concurrent one would make the outcome differ
// from running them one after the other, as badger's conflict detection
// does, or when they deadlock (40P01); fn then runs again, up to
// conflict_retries times, after a short jittered pause. Writes are sent
// in batches, before the next read and at commit; the outbox rows of
// Emit are inserted just before the commit (see doc.go).
func (s *Store) Update(ctx context.Context, fn func(tx pipeline.Tx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	for run := 0; ; run++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: update: %w", s.where, err)
		}
		emits, seqs, err := s.updateOnce(ctx, fn)
		if err == nil {
			for i, ch := range emits {
				ch.Seq = seqs[i]
			}
			if len(emits) > 0 {
				s.wake()
			}
			return nil
		}
		if !isConflict(err) {
			return err
		}
		if run >= s.cfg.ConflictRetries {
			return fmt.Errorf("%w (gave up after %d runs)", err, run+1)
		}
		s.conflicts.Add(1)
		pause := time.NewTimer(rand.N(time.Millisecond<<min(run, 7)) + time.Millisecond)
		select {
		case <-ctx.Done():
			pause.Stop()
			return fmt.Errorf("%s: update after a conflict: %w", s.where, ctx.Err())
		case <-pause.C:
		}
	}
}

// updateTxOptions begin an Update's transaction: SERIALIZABLE, with
// sequential scans off for its statements (SET LOCAL: until its end), in
// one round trip. Under SERIALIZABLE a sequential scan takes a read lock
// on the whole table, which any concurrent write of the table conflicts
// with, while an index scan locks only the index pages it reads; on a
// small table the planner prefers a sequential scan even to look up a
// key (PostgreSQL's documentation on serializable isolation recommends
// steering it to index scans). Every statement of an Update has an index
// to use; a scan without one (none here) would still run, planned as if
// its sequential scan were very costly.
var updateTxOptions = pgx.TxOptions{BeginQuery: "BEGIN ISOLATION LEVEL SERIALIZABLE; " + seqScanOff}

// seqScanOff is the setting updateTxOptions make.
const seqScanOff = "SET LOCAL enable_seqscan = off"

// updateOnce runs fn once in a transaction and commits it, returning the
// changes emitted with their seqs.
func (s *Store) updateOnce(ctx context.Context, fn func(tx pipeline.Tx) error) ([]*pipeline.Change, []uint64, error) {
	tx, err := s.pool.BeginTx(ctx, updateTxOptions)
	if err != nil {
		return nil, nil, s.fail("update: begin", err)
	}
	defer rollback(ctx, tx)
	t := &writeTx{readTx: *newReadTx(s, tx)}
	t.hasEntries = make(map[pipeline.Key]bool)
	if err := fn(t); err != nil {
		return nil, nil, err
	}
	seqs, err := t.writeEmits(ctx)
	if err != nil {
		return nil, nil, err
	}
	if s.beforeCommit != nil && len(seqs) > 0 {
		s.beforeCommit()
	}
	// The caller giving up now must not leave the commit's outcome
	// unknown: it is bounded by its own timeout instead.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ConnectTimeout+30*time.Second)
	defer cancel()
	if err := tx.Commit(cctx); err != nil {
		return nil, nil, s.fail("update: commit", err)
	}
	return t.emits, seqs, nil
}

// wake signals Notify's channel without blocking.
func (s *Store) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Outbox returns the store's outbox.
func (s *Store) Outbox() pipeline.Outbox { return outbox{s} }

// Close waits for the operations in progress, stops the sweeper and the
// listener and closes the connections. It is safe to call twice.
func (s *Store) Close(_ context.Context) error {
	return s.gate.Close(func() error {
		close(s.stop)
		s.done.Wait()
		s.pool.Close()
		s.log.Info("postgres storage closed", "where", s.where, "schema", s.cfg.Schema)
		return nil
	})
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// rollback ends tx unless it committed, even when ctx is done, in bounded
// time (a dead connection is dropped by the pool).
func rollback(ctx context.Context, tx pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = tx.Rollback(rctx)
}

// untilStop is a context of the store's background work: it ends when
// the store closes (or cancel is called).
func (s *Store) untilStop() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
