package badger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/iotod/iotod/pipeline"
)

// maxConflictRetries bounds how often Update reruns fn after a conflict.
const maxConflictRetries = 100

// Store is a pipeline.Store on badger. It is safe for concurrent use.
type Store struct {
	cfg    Config
	log    *slog.Logger
	db     *badger.DB
	seqs   *seqTracker
	syncer *syncer  // nil unless durability is sync
	logs   *logSync // used by syncer only
	notify chan struct{}

	// vlogDirty is set after a commit that put a value in the value log
	// (one of valueThreshold bytes or more) and taken by the next sync.
	vlogDirty      atomic.Bool
	valueThreshold int

	trimMu sync.Mutex
	hwm    uint64 // persisted outbox high-water mark; guarded by trimMu
	// trimmedTo: every outbox change with Seq <= trimmedTo is deleted.
	trimmedTo atomic.Uint64

	gate pipeline.StoreGate

	stopSweep context.CancelFunc
	sweepDone chan struct{}
}

// Open opens (creating if needed) the store in cfg.Path. A nil logger
// discards. It fails on a 32-bit platform, where badger is unsafe.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := CheckPlatform(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("badger storage: config: %w", err)
	}
	cfg = cfg.resolved()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("badger storage: open %s: %w", cfg.Path, err)
	}
	db, err := badger.Open(badgerOptions(cfg, logger))
	if err != nil {
		return nil, fmt.Errorf("badger storage: open %s: %w", cfg.Path, err)
	}
	s := &Store{cfg: cfg, log: logger, db: db, notify: make(chan struct{}, 1), valueThreshold: int(db.Opts().ValueThreshold)}
	if err := s.loadOutbox(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if cfg.Durability == DurabilitySync {
		s.logs = newLogSync(cfg.Path)
		s.syncer = newSyncer(s.syncLogs)
	}
	s.startSweeper()
	_, last, depth := s.seqs.visible()
	logger.Info("badger storage opened", "path", cfg.Path, "durability", cfg.Durability,
		"outbox_depth", depth, "outbox_last", last)
	return s, nil
}

func badgerOptions(cfg Config, logger *slog.Logger) badger.Options {
	o := badger.DefaultOptions(cfg.Path).
		WithSyncWrites(false).
		WithLogger(badgerLogger{log: logger}).
		WithMemTableSize(cfg.MemTableSize).
		WithNumMemtables(cfg.NumMemtables).
		WithBlockCacheSize(cfg.BlockCacheSize).
		WithIndexCacheSize(cfg.IndexCacheSize).
		WithValueLogFileSize(cfg.ValueLogFileSize).
		WithValueThreshold(valueThreshold(cfg.MemTableSize)).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMetricsEnabled(false)
	return boundBuilders(o, cfg.MemTableSize, cfg.BlockCacheSize)
}

// boundBuilders bounds what badger's table builders hold, most of its
// memory under a write load: a compaction keeps up to 8 builders (plus one
// per split) in flight, each with a buffer of twice its table's size that
// grows as it fills, and badger pools those buffers for reuse. So tables
// are a quarter of a memtable (512 KiB to 2 MiB) at every level (no growth
// by level), and without compression (its buffers double a builder's
// memory) when the block cache is 4 MiB or less (memory: 32MB or less, a
// device's budget). Compression stays on above that: without it badger
// writes about twice the bytes and the group commit's fdatasync waits
// behind them (P1's p99 went from 13-14 ms to 19-22 ms). Measured in
// docs/benchmarks.md (P1; P5, the device process).
func boundBuilders(o badger.Options, memTableSize, blockCacheSize int64) badger.Options {
	o = o.WithBaseTableSize(max(512<<10, min(2*mib, memTableSize/4)))
	o.TableSizeMultiplier = 1
	if blockCacheSize <= 4*mib {
		o = o.WithCompression(options.None)
	}
	return o
}

// enter admits an operation unless the store is closed; leave ends it.
func (s *Store) enter() error {
	return s.gate.Enter("badger storage " + s.cfg.Path)
}

func (s *Store) leave() { s.gate.Leave() }

// View runs fn on a read-only snapshot.
func (s *Store) View(ctx context.Context, fn func(tx pipeline.ReadTx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	return fn(&readTx{txn: txn, now: time.Now().UnixMilli()})
}

// Update runs fn in one transaction and commits it, rerunning fn on a
// conflict with a concurrent transaction. With durability "sync" it returns
// after the commit is fsynced.
func (s *Store) Update(ctx context.Context, fn func(tx pipeline.Tx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.updateOnce(ctx, fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt >= maxConflictRetries {
			return fmt.Errorf("badger storage: update gave up after %d attempts: %w", attempt, err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(min(attempt, 20))*50+1)) * time.Microsecond)
	}
}

func (s *Store) updateOnce(ctx context.Context, fn func(tx pipeline.Tx) error) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	t := &writeTx{readTx: readTx{txn: txn, now: time.Now().UnixMilli()}, bigValue: s.valueThreshold}
	if err := fn(t); err != nil {
		return err
	}
	if !t.dirty {
		return nil
	}
	n := len(t.emits)
	var first uint64
	if n > 0 {
		first = s.seqs.alloc(n)
		if err := t.writeEmits(first); err != nil {
			s.seqs.resolve(first, n, false)
			return err
		}
	}
	if err := txn.Commit(); err != nil {
		if n > 0 {
			s.seqs.resolve(first, n, false)
		}
		return fmt.Errorf("badger storage: commit: %w", err)
	}
	var err error
	if s.syncer != nil {
		if t.inVlog {
			s.vlogDirty.Store(true)
		}
		err = s.syncer.wait(ctx)
	}
	if n > 0 {
		// Committed even if the fsync wait failed: the change is in the
		// store and a reader would find it.
		s.seqs.resolve(first, n, true)
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
	return err
}

// syncLogs is the group commit's sync: logSync, or badger's own DB.Sync if
// the log files are not where logSync expects them.
func (s *Store) syncLogs() error {
	err := s.logs.sync(s.vlogDirty.Swap(false))
	if errors.Is(err, errNoLogs) {
		err = s.db.Sync()
	}
	if err != nil {
		return fmt.Errorf("badger storage: sync %s: %w", s.cfg.Path, err)
	}
	return nil
}

// Outbox returns the store's outbox.
func (s *Store) Outbox() pipeline.Outbox { return outbox{s} }

// Close stops the sweeper and the syncer and closes badger, after the
// operations in progress end. It is safe to call more than once. Closing
// badger cannot be interrupted, so ctx is not consulted.
func (s *Store) Close(_ context.Context) error {
	return s.gate.Close(func() error {
		s.stopSweep()
		<-s.sweepDone
		if s.syncer != nil {
			s.syncer.close()
			s.logs.close()
		}
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("badger storage: close %s: %w", s.cfg.Path, err)
		}
		s.log.Info("badger storage closed", "path", s.cfg.Path)
		return nil
	})
}

var _ pipeline.Store = (*Store)(nil)

// MaxUpdateBytes is about what one badger transaction holds: 15% of a
// memtable, less what badger counts per entry beyond key and value
// (pipeline.UpdateSizer).
func (s *Store) MaxUpdateBytes() int64 { return s.cfg.MemTableSize * 15 / 100 }
