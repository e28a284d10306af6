package badger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// logSync makes badger's logs durable without badger's DB.Sync, which
// holds the lock every write batch takes for the whole fsync and so stalls
// all writers once per group commit. It fdatasyncs the write-ahead (.mem)
// and value (.vlog) log files itself: the newest file of each kind, which
// takes the writes, every round (the newest value log only when a value
// large enough to go there was committed); an older (rotated) file once, because
// badger, with SyncWrites off, does not sync a log when it starts the next
// one and DB.Sync would not reach it either. Badger writes the logs through
// shared memory maps, whose dirty pages an fdatasync of the file writes
// back. Used by the syncer goroutine only.
type logSync struct {
	dir    string
	files  map[string]*os.File // open log files by name
	synced map[string]bool     // rotated files already synced
}

var logExts = []string{".mem", ".vlog"}

var errNoLogs = errors.New("no write-ahead log file found")

func newLogSync(dir string) *logSync {
	return &logSync{dir: dir, files: make(map[string]*os.File), synced: make(map[string]bool)}
}

// sync makes durable every write badger finished before it was called.
// vlog says whether any of them put a value in the value log.
func (l *logSync) sync(vlog bool) error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("listing logs in %s: %w", l.dir, err)
	}
	ids := make(map[string]int64, len(entries))
	newest := make(map[string]int64, len(logExts))
	for _, e := range entries {
		for _, ext := range logExts {
			if id, ok := logFileID(e.Name(), ext); ok {
				ids[e.Name()] = id
				if cur, seen := newest[ext]; !seen || id > cur {
					newest[ext] = id
				}
			}
		}
	}
	if _, ok := newest[".mem"]; !ok {
		return fmt.Errorf("%s: %w", l.dir, errNoLogs)
	}
	l.forget(ids)
	for name, id := range ids {
		ext := filepath.Ext(name)
		current := id == newest[ext]
		if !current && l.synced[name] || current && ext == ".vlog" && !vlog {
			continue
		}
		if err := l.syncFile(name); err != nil {
			return err
		}
		if !current {
			l.synced[name] = true
			l.closeFile(name) // takes no more writes
		}
	}
	return nil
}

// forget drops state of files that badger deleted (their data is in
// synced tables now).
func (l *logSync) forget(present map[string]int64) {
	for name := range l.files {
		if _, ok := present[name]; !ok {
			l.closeFile(name)
		}
	}
	for name := range l.synced {
		if _, ok := present[name]; !ok {
			delete(l.synced, name)
		}
	}
}

func (l *logSync) syncFile(name string) error {
	f := l.files[name]
	if f == nil {
		var err error
		f, err = os.Open(filepath.Join(l.dir, name))
		if os.IsNotExist(err) {
			return nil // flushed to a table and deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("opening log %s: %w", name, err)
		}
		l.files[name] = f
	}
	if err := fdatasync(f); err != nil {
		return fmt.Errorf("syncing log %s: %w", filepath.Join(l.dir, name), err)
	}
	return nil
}

func (l *logSync) closeFile(name string) {
	if f := l.files[name]; f != nil {
		_ = f.Close() // read-only descriptor
		delete(l.files, name)
	}
}

// close releases every descriptor.
func (l *logSync) close() {
	for name := range l.files {
		l.closeFile(name)
	}
}

func logFileID(name, ext string) (int64, bool) {
	base, ok := strings.CutSuffix(name, ext)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(base, 10, 64)
	return id, err == nil
}
