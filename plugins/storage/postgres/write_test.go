package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iotod/iotod/pipeline"
)

// statementLog counts the statements an update's transactions send, by
// SQL text.
type statementLog struct {
	mu sync.Mutex
	n  map[string]int
}

func logStatements(s *Store) *statementLog {
	l := &statementLog{n: map[string]int{}}
	s.sending = func(b *pgx.Batch) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, q := range b.QueuedQueries {
			l.n[q.SQL]++
		}
	}
	return l
}

// take returns the count of sql and forgets every count.
func (l *statementLog) take(sql string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.n[sql]
	clear(l.n)
	return n
}

// count returns the count of sql.
func (l *statementLog) count(sql string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[sql]
}

// storedEntries lists the rows of entries at key, as "ix/hash/sort".
func storedEntries(t *testing.T, s *Store, key pipeline.Key) []string {
	t.Helper()
	rows, err := rawConn(t).Query(t.Context(), "SELECT convert_from(ix || '/' || hash || '/' || sort, 'UTF8') FROM "+s.n.entries+
		" WHERE pk = $1 AND sk = $2 ORDER BY 1", []byte(key.PK), []byte(key.SK))
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func update(t *testing.T, s *Store, fn func(tx pipeline.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}

func entry(hash, sort string) pipeline.IndexEntry {
	return pipeline.IndexEntry{Index: "gs1", Hash: hash, Sort: sort}
}

// A Put replaces the entries of the record it replaces, whether the
// transaction read that record first (Get, Prefetch) or not.
func TestPutReplacesTheEntriesOfTheRecordItReplaces(t *testing.T) {
	s := openStore(t, testConfig(t))
	for _, read := range []string{"none", "get", "prefetch"} {
		key := pipeline.Key{PK: "old", SK: read}
		putAll(t, s, rec(key.PK, key.SK, entry("h", "1"), entry("h", "2")))
		update(t, s, func(tx pipeline.Tx) error {
			switch read {
			case "get":
				if _, err := tx.Get(t.Context(), key); err != nil {
					return err
				}
			case "prefetch":
				if err := tx.(pipeline.Prefetcher).Prefetch(t.Context(), []pipeline.Key{key}); err != nil {
					return err
				}
			}
			return tx.Put(t.Context(), rec(key.PK, key.SK, entry("h", "3")))
		})
		if got := storedEntries(t, s, key); fmt.Sprint(got) != "[gs1/h/3]" {
			t.Errorf("read %s: entries after the put %q, want only gs1/h/3", read, got)
		}
		putAll(t, s, rec(key.PK, key.SK))
		if got := storedEntries(t, s, key); len(got) != 0 {
			t.Errorf("read %s: entries after a put without any: %q", read, got)
		}
	}
}

// A key the transaction read missing, then wrote with entries, then
// wrote again with others, keeps only the last ones: within one batch of
// writes as across batches (a read in between sends the first write).
func TestPutsOfANewKeyKeepTheLastEntries(t *testing.T) {
	s := openStore(t, testConfig(t))
	for _, between := range []bool{false, true} {
		key := pipeline.Key{PK: "new", SK: fmt.Sprint(between)}
		update(t, s, func(tx pipeline.Tx) error {
			if _, err := tx.Get(t.Context(), key); !errors.Is(err, pipeline.ErrNotFound) {
				return fmt.Errorf("get of a new key: %v", err)
			}
			if err := tx.Put(t.Context(), rec(key.PK, key.SK, entry("a", "1"), entry("a", "2"))); err != nil {
				return err
			}
			if between {
				if _, err := tx.Get(t.Context(), key); err != nil {
					return err
				}
			}
			if err := tx.Put(t.Context(), rec(key.PK, key.SK, entry("b", "1"))); err != nil {
				return err
			}
			if _, err := tx.Get(t.Context(), key); err != nil {
				return err
			}
			// And a third, without entries, after the others were sent.
			return tx.Put(t.Context(), rec(key.PK, key.SK))
		})
		if got := storedEntries(t, s, key); len(got) != 0 {
			t.Errorf("read between: %v: entries %q, want none", between, got)
		}
	}
	key := pipeline.Key{PK: "new", SK: "kept"}
	update(t, s, func(tx pipeline.Tx) error {
		if err := tx.(pipeline.Prefetcher).Prefetch(t.Context(), []pipeline.Key{key}); err != nil {
			return err
		}
		if err := tx.Put(t.Context(), rec(key.PK, key.SK, entry("a", "1"))); err != nil {
			return err
		}
		if _, err := tx.Get(t.Context(), key); err != nil {
			return err
		}
		return tx.Put(t.Context(), rec(key.PK, key.SK, entry("b", "2")))
	})
	if got := storedEntries(t, s, key); fmt.Sprint(got) != "[gs1/b/2]" {
		t.Errorf("entries %q, want only gs1/b/2", got)
	}
}

// A Put or Delete of a key the transaction read missing, or read without
// entries, sends no delete of its entries; a blind one does.
func TestNoEntriesDeleteForAKeyKnownWithoutEntries(t *testing.T) {
	s := openStore(t, testConfig(t))
	log := logStatements(s)
	plain := pipeline.Key{PK: "k", SK: "plain"}
	putAll(t, s, rec(plain.PK, plain.SK))
	_ = log.take("")
	cases := []struct {
		name    string
		fn      func(tx pipeline.Tx) error
		deletes int
	}{
		{"put after get missing", func(tx pipeline.Tx) error {
			if _, err := tx.Get(t.Context(), pipeline.Key{PK: "k", SK: "1"}); !errors.Is(err, pipeline.ErrNotFound) {
				return fmt.Errorf("get: %v", err)
			}
			return tx.Put(t.Context(), rec("k", "1", entry("h", "1")))
		}, 0},
		{"put after prefetch", func(tx pipeline.Tx) error {
			keys := []pipeline.Key{plain, {PK: "k", SK: "2"}}
			if err := tx.(pipeline.Prefetcher).Prefetch(t.Context(), keys); err != nil {
				return err
			}
			for _, k := range keys {
				if err := tx.Put(t.Context(), rec(k.PK, k.SK)); err != nil {
					return err
				}
			}
			return nil
		}, 0},
		{"delete after get", func(tx pipeline.Tx) error {
			if _, err := tx.Get(t.Context(), plain); err != nil {
				return err
			}
			return tx.Delete(t.Context(), plain)
		}, 0},
		{"put after put without entries", func(tx pipeline.Tx) error {
			if _, err := tx.Get(t.Context(), plain); !errors.Is(err, pipeline.ErrNotFound) {
				return fmt.Errorf("get: %v", err)
			}
			if err := tx.Put(t.Context(), rec(plain.PK, plain.SK)); err != nil {
				return err
			}
			if _, err := tx.Get(t.Context(), plain); err != nil {
				return err
			}
			return tx.Put(t.Context(), rec(plain.PK, plain.SK, entry("h", "2")))
		}, 0},
		{"blind put", func(tx pipeline.Tx) error { return tx.Put(t.Context(), rec("k", "3")) }, 1},
		{"blind delete", func(tx pipeline.Tx) error { return tx.Delete(t.Context(), pipeline.Key{PK: "k", SK: "4"}) }, 1},
		{"put after get with entries", func(tx pipeline.Tx) error {
			if _, err := tx.Get(t.Context(), plain); err != nil {
				return err
			}
			return tx.Put(t.Context(), rec(plain.PK, plain.SK))
		}, 1},
	}
	for _, c := range cases {
		update(t, s, c.fn)
		if n := log.take(s.sql.deleteEntries); n != c.deletes {
			t.Errorf("%s: %d deletes of entries, want %d", c.name, n, c.deletes)
		}
	}
	if got := storedEntries(t, s, pipeline.Key{PK: "k", SK: "1"}); fmt.Sprint(got) != "[gs1/h/1]" {
		t.Errorf("k/1 entries %q", got)
	}
	if got := storedEntries(t, s, plain); len(got) != 0 {
		t.Errorf("k/plain entries %q, want none", got)
	}
}
