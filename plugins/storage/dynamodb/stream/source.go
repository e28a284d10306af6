package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// Source reads a DynamoDB table's stream and hands its records out as
// changes through the pipeline.Outbox contract, for the cloud's down
// sender. Make one with New; Start it (or let the first Read start it);
// Close it to checkpoint and release its shards.
type Source struct {
	cfg   Config
	conv  *Converter
	owner string
	log   *slog.Logger
	m     metrics

	notify chan struct{} // a value after changes are added
	room   chan struct{} // a value after a trim frees buffer space
	wake   chan struct{} // asks the refresh loop to run now

	startMu sync.Mutex // guards started, closed, ctx, cancel, start*
	started bool
	closed  bool
	// startErr is the failure of the last start from Read, tried at
	// startTried and returned at startReported.
	startErr                  error
	startTried, startReported time.Time
	ctx                       context.Context
	cancel                    context.CancelFunc
	wg                        sync.WaitGroup

	ckMu sync.Mutex // serialises checkpoint writes

	mu        sync.Mutex
	arn       string
	buf       []entry // changes read and not trimmed, in Seq order
	lastSeq   uint64
	handed    uint64 // the highest Seq Read returned
	shards    map[string]*shard
	nextInc   int
	endedHere map[string]bool      // shards this process read to their end
	done      map[string]bool      // shards checkpointed to their end
	seen      map[string]observed  // others' leases: state and since when
	cooldown  map[string]time.Time // shards not to take again before
	bgErr     error                // the last failure of the loops
	reported  time.Time            // when bgErr was last returned by Read
	warned    time.Time            // when an invalid record was last logged
}

var _ pipeline.Outbox = (*Source)(nil)

// entry is one change read and not trimmed.
type entry struct {
	sh *shard
	ch pipeline.Change
}

// mark is a change's place in its shard: its local Seq and the stream
// sequence number up to which the shard is settled once it is (its record
// and the skipped records after it).
type mark struct {
	seq    uint64
	seqNum string
}

// shard is a shard this worker holds the lease of (one per lease taken).
type shard struct {
	id, parent string
	inc        int // order of taking, so parents checkpoint before children
	ver        int64
	renewed    time.Time // when the last successful take or renewal began
	lost       bool
	cancel     context.CancelFunc

	marks    []mark // changes handed out, not trimmed, in order
	lastRead string // sequence number of the last record read
	settled  string // every record up to this one is settled
	written  string // the checkpoint in the table
	ended    bool   // read to its end (the shard is closed)
	want     int    // bumped when settled moves by a trim, or at the end
	wrote    int    // the value of want last written
}

type observed struct {
	owner string
	ver   int64
	since time.Time
}

// New checks cfg and returns a source; it does no I/O. The shards are
// read from Start (or the first Read) until Close.
func New(cfg Config) (*Source, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	worker := cfg.Worker
	if worker == "" {
		worker, _ = os.Hostname()
		if worker == "" {
			worker = "worker"
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	s := &Source{
		cfg: cfg, log: cfg.Logger.With("table", cfg.Table),
		owner: pipeline.Truncate(worker, 100) + "/" + hex.EncodeToString(b[:]),
		conv: &Converter{Site: cfg.Site, TypeField: cfg.TypeField, UpdatedField: cfg.UpdatedField,
			HashKey: cfg.HashKey, SortKey: cfg.SortKey},
		notify: make(chan struct{}, 1), room: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		shards: map[string]*shard{}, endedHere: map[string]bool{}, done: map[string]bool{},
		seen: map[string]observed{}, cooldown: map[string]time.Time{},
	}
	return s, nil
}

// Owner is this source's id in the lease items.
func (s *Source) Owner() string { return s.owner }

// Owned lists the shards this source holds the lease of, sorted.
func (s *Source) Owned() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.shards))
	for id := range s.shards {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Start checks the table (it must exist, with a NEW_AND_OLD_IMAGES
// stream and the configured keys) and starts reading in the background.
// A missing table or stream is a permanent error naming the table.
// Calling Start again does nothing.
func (s *Source) Start(ctx context.Context) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.closed {
		return fmt.Errorf("dynamodb stream of table %q: %w", s.cfg.Table, pipeline.ErrClosed)
	}
	if s.started {
		return nil
	}
	arn, err := s.describeTable(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.arn = arn
	s.mu.Unlock()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.started = true
	s.wg.Add(2)
	go s.refreshLoop(s.ctx)
	go s.renewLoop(s.ctx)
	return nil
}

// Read returns up to limit changes with Seq > after, in Seq order: the
// stream records read so far, each with a local sequence number that
// increases in read order within this process. The first Read starts the
// source (a failed start is tried again at most every 5 seconds). A
// failure to start, or of the background reading (when nothing is to be
// read), is returned at most every 30 seconds, so a caller that logs it
// does not flood its log; Start and Err give it at any time.
func (s *Source) Read(ctx context.Context, after uint64, limit int) ([]pipeline.Change, error) {
	if err := s.startForRead(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.buf), func(i int) bool { return s.buf[i].ch.Seq > after })
	n := min(limit, len(s.buf)-i)
	if n <= 0 {
		if s.bgErr != nil && time.Since(s.reported) >= 30*time.Second {
			s.reported = time.Now()
			return nil, s.bgErr
		}
		return nil, nil
	}
	out := make([]pipeline.Change, n)
	for k := range out {
		out[k] = s.buf[i+k].ch
	}
	s.handed = max(s.handed, out[n-1].Seq)
	return out, nil
}

// startForRead starts the source from Read: after a failed start it tries
// again at most every 5 seconds, and returns the failure at most every 30
// seconds (nil in between), as Read does with background failures.
func (s *Source) startForRead(ctx context.Context) error {
	s.startMu.Lock()
	wait := !s.started && !s.closed && s.startErr != nil && time.Since(s.startTried) < 5*time.Second
	err := s.startErr
	s.startMu.Unlock()
	if !wait {
		err = s.Start(ctx) // nil when started
	}
	if err == nil || errors.Is(err, pipeline.ErrClosed) {
		return err
	}
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if !wait {
		s.startErr, s.startTried = err, time.Now()
	}
	if time.Since(s.startReported) < 30*time.Second {
		return nil
	}
	s.startReported = time.Now()
	return err
}

// Err returns the last failure of the background reading (nil when the
// last attempt of everything worked).
func (s *Source) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bgErr
}

// Trim drops every change with Seq <= upTo and checkpoints, for each
// shard, the last record settled with all before it: durably, in the
// table (pk "~stream", sk "checkpoint#<shardId>"), before it returns. A
// failed checkpoint write is retried by the next Trim and in the
// background; a shard whose lease was taken over is let go.
func (s *Source) Trim(ctx context.Context, upTo uint64) error {
	s.mu.Lock()
	i := sort.Search(len(s.buf), func(i int) bool { return s.buf[i].ch.Seq > upTo })
	if i > 0 {
		s.buf = append([]entry(nil), s.buf[i:]...)
	}
	for _, sh := range s.shards {
		j := 0
		for j < len(sh.marks) && sh.marks[j].seq <= upTo {
			j++
		}
		if j > 0 {
			sh.settled = sh.marks[j-1].seqNum
			sh.marks = sh.marks[j:]
			sh.want++
		}
	}
	s.mu.Unlock()
	if i > 0 {
		signal(s.room)
	}
	return s.flush(ctx)
}

// Stats reports the changes read and not trimmed: Depth, the lowest and
// highest Seq, and the stream time of the oldest (DynamoDB's approximate
// creation time of its record).
func (s *Source) Stats(context.Context) (pipeline.OutboxStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := pipeline.OutboxStats{Depth: int64(len(s.buf)), Last: s.lastSeq}
	if len(s.buf) > 0 {
		st.First = s.buf[0].ch.Seq
		st.Oldest = time.UnixMilli(s.buf[0].ch.Time)
	}
	return st, nil
}

// Notify returns a channel that receives a value after new changes are
// read from the stream.
func (s *Source) Notify() <-chan struct{} { return s.notify }

// Close stops reading, writes the last checkpoints and releases the
// shards' leases, so other workers take them at once. Changes read and
// not trimmed are read again by whoever takes their shard. It is safe to
// call twice.
func (s *Source) Close(ctx context.Context) error {
	if !s.stop() {
		return nil
	}
	s.mu.Lock()
	for _, sh := range s.shards {
		if sh.settled != sh.written {
			sh.want++
		}
	}
	s.mu.Unlock()
	errs := []error{s.flush(ctx)}
	s.mu.Lock()
	held := make([]*shard, 0, len(s.shards))
	for _, sh := range s.shards {
		held = append(held, sh)
	}
	s.shards = map[string]*shard{}
	s.mu.Unlock()
	for _, sh := range held {
		errs = append(errs, s.releaseLease(ctx, sh.id, sh.ver))
	}
	errs = append(errs, s.forgetWorker(ctx, s.owner, 0))
	return errors.Join(errs...)
}

// stop ends the background work and waits for it; it reports whether
// there was any to end.
func (s *Source) stop() bool {
	s.startMu.Lock()
	if s.closed {
		s.startMu.Unlock()
		return false
	}
	s.closed = true
	started := s.started
	s.startMu.Unlock()
	if !started {
		return false
	}
	s.cancel()
	s.wg.Wait()
	return true
}

// kill stops the source as a crash would: no checkpoint, no release.
func (s *Source) kill() { s.stop() }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// fail records a failure of the background work.
func (s *Source) fail(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	s.m.errors.Add(1)
	s.mu.Lock()
	first := s.bgErr == nil || s.bgErr.Error() != err.Error()
	s.bgErr = err
	s.mu.Unlock()
	if first {
		s.log.Warn("dynamodb stream source", "err", err)
	}
}

// ok clears the recorded failure once a round of work succeeds.
func (s *Source) ok() {
	s.mu.Lock()
	s.bgErr = nil
	s.mu.Unlock()
}

// valid reports whether sh's lease is safely ours at now: not lost, and
// renewed less than a lease duration ago with a margin. s.mu is held.
func (s *Source) valid(sh *shard, now time.Time) bool {
	return !sh.lost && now.Before(s.deadline(sh))
}

// deadline is when this worker stops trusting sh's lease: a fifth of the
// lease before another worker may take it over.
func (s *Source) deadline(sh *shard) time.Time {
	return sh.renewed.Add(s.cfg.LeaseDuration - s.cfg.LeaseDuration/5)
}

// lose lets a shard go: its reader stops and the changes it read that
// were not handed out yet are dropped (whoever takes the shard reads them
// again).
func (s *Source) lose(sh *shard, why error) {
	if !s.drop(sh) {
		return
	}
	s.m.leasesLost.Add(1)
	s.log.Warn("dynamodb stream shard lease lost", "shard", sh.id, "err", why)
}

// drop stops reading sh and drops the changes it read that were not
// handed out yet; it reports whether sh was held.
func (s *Source) drop(sh *shard) bool {
	s.mu.Lock()
	if s.shards[sh.id] != sh {
		s.mu.Unlock()
		return false
	}
	delete(s.shards, sh.id)
	sh.lost = true
	sh.cancel()
	kept := s.buf[:0]
	for _, e := range s.buf {
		if e.sh != sh || e.ch.Seq <= s.handed {
			kept = append(kept, e)
		}
	}
	clear(s.buf[len(kept):])
	s.buf = kept
	s.mu.Unlock()
	signal(s.wake)
	return true
}

// flush writes the checkpoints that moved (parents first), and for a
// shard read and settled to its end marks it ended and releases its
// lease.
func (s *Source) flush(ctx context.Context) error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	type job struct {
		sh    *shard
		seq   string
		ended bool
		want  int
		ver   int64
	}
	var jobs []job
	s.mu.Lock()
	for _, sh := range s.shards {
		end := sh.ended && len(sh.marks) == 0
		if end && sh.wrote == sh.want {
			sh.want++ // the end is written once
		}
		if sh.want != sh.wrote && !sh.lost {
			jobs = append(jobs, job{sh: sh, seq: sh.settled, ended: end, want: sh.want})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(jobs, func(a, b job) int { return a.sh.inc - b.sh.inc })
	var errs []error
	for _, j := range jobs {
		if j.seq == "" && !j.ended {
			s.mu.Lock()
			j.sh.wrote = j.want // nothing settled yet: nothing to write
			s.mu.Unlock()
			continue
		}
		err := s.writeCheckpoint(ctx, j.sh.id, j.seq, j.ended)
		if errors.Is(err, errLeaseLost) {
			s.lose(j.sh, err)
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		j.sh.written, j.sh.wrote = j.seq, j.want
		release := j.ended && s.shards[j.sh.id] == j.sh
		if release {
			delete(s.shards, j.sh.id)
			s.done[j.sh.id] = true
			j.ver = j.sh.ver
			j.sh.cancel()
		}
		s.mu.Unlock()
		if release {
			errs = append(errs, s.releaseLease(ctx, j.sh.id, j.ver))
			signal(s.wake) // its children may start
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		s.fail(err)
	}
	return err
}
