package badger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// syncer is the group commit: writers that committed call wait, and one
// goroutine runs the sync function once for everyone who arrived before it
// began. A round collects waiters while the previous round's fsync runs.
type syncer struct {
	sync func() error

	mu   sync.Mutex
	next *syncRound // the round that has not started yet

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

type syncRound struct {
	done chan struct{}
	err  error
}

func newSyncer(fn func() error) *syncer {
	s := &syncer{
		sync: fn,
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.run()
	return s
}

// wait returns once a sync that began after the call has finished, so
// every write committed before the call is durable.
func (s *syncer) wait(ctx context.Context) error {
	s.mu.Lock()
	r := s.next
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		s.next = r
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for fsync: %w", ctx.Err())
	}
}

func (s *syncer) run() {
	defer close(s.done)
	for {
		select {
		case <-s.kick:
			s.round()
		case <-s.stop:
			s.round()
			return
		}
	}
}

func (s *syncer) round() {
	s.mu.Lock()
	r := s.next
	s.next = nil
	s.mu.Unlock()
	if r == nil {
		return
	}
	r.err = s.sync()
	close(r.done)
}

// close runs a last round for any waiter and stops the goroutine.
func (s *syncer) close() {
	close(s.stop)
	<-s.done
}

// rotationGuard fsyncs the write-ahead (.mem) and value (.vlog) log files
// that badger has rotated away from. With SyncWrites off badger neither
// syncs a log file when it starts a new one nor lets DB.Sync reach the old
// one, so a commit written just before a rotation would otherwise be
// durable only once its memtable is flushed. A rotated file takes no more
// writes, so it is fsynced once. Used by the syncer goroutine only.
type rotationGuard struct {
	dir    string
	synced map[string]bool
}

func newRotationGuard(dir string) *rotationGuard {
	return &rotationGuard{dir: dir, synced: make(map[string]bool)}
}

var logExts = []string{".mem", ".vlog"}

// sync must run after DB.Sync: every log file older than the newest of its
// kind was rotated before DB.Sync looked or is the one DB.Sync synced.
func (g *rotationGuard) sync() error {
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		return fmt.Errorf("listing log files in %s: %w", g.dir, err)
	}
	newest := make(map[string]int64, len(logExts))
	ids := make(map[string]int64, len(entries))
	for _, e := range entries {
		for _, ext := range logExts {
			if id, ok := logFileID(e.Name(), ext); ok {
				ids[e.Name()] = id
				newest[ext] = max(newest[ext], id)
			}
		}
	}
	for name := range g.synced {
		if _, ok := ids[name]; !ok {
			delete(g.synced, name)
		}
	}
	for name, id := range ids {
		if g.synced[name] || id >= newest[filepath.Ext(name)] {
			continue
		}
		if err := fsyncFile(filepath.Join(g.dir, name)); err != nil {
			return err
		}
		g.synced[name] = true
	}
	return nil
}

func logFileID(name, ext string) (int64, bool) {
	base, ok := strings.CutSuffix(name, ext)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(base, 10, 64)
	return id, err == nil
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil // flushed to a table and deleted meanwhile
	}
	if err != nil {
		return fmt.Errorf("opening rotated log %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync rotated log %s: %w", path, err)
	}
	return nil
}
