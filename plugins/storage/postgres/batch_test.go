package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iotod/iotod/pipeline"
)

// dumpKeys lists the rows of items and entries whose pk starts with
// prefix, every column, in key order.
func dumpKeys(t *testing.T, conn *pgx.Conn, s *Store, prefix string) string {
	t.Helper()
	var sb strings.Builder
	for _, q := range []string{
		"SELECT format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', pk, sk, model, convert_from(item, 'UTF8'), indexes, wall, counter, origin, expires, owner) FROM " +
			s.n.items + " WHERE starts_with(convert_from(pk, 'UTF8'), $1) ORDER BY pk, sk",
		"SELECT format('entry %s|%s|%s|%s|%s', convert_from(ix, 'UTF8'), convert_from(hash, 'UTF8'), convert_from(sort, 'UTF8'), " +
			"convert_from(pk, 'UTF8'), convert_from(sk, 'UTF8')) FROM " + s.n.entries +
			" WHERE starts_with(convert_from(pk, 'UTF8'), $1) ORDER BY pk, sk, ix, hash, sort",
	} {
		rows, err := conn.Query(t.Context(), q, prefix)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			sb.WriteString(l + "\n")
		}
	}
	return sb.String()
}

// op is one step of a transaction: a Put of rec, a Delete of key, or a
// read (Get or Prefetch) of key, which sends the writes queued before it.
type op struct {
	kind string // put, delete, get, prefetch
	key  pipeline.Key
	rec  *pipeline.Record
}

func (o op) run(ctx context.Context, tx pipeline.Tx) error {
	switch o.kind {
	case "put":
		return tx.Put(ctx, o.rec)
	case "delete":
		return tx.Delete(ctx, o.key)
	case "get":
		if _, err := tx.Get(ctx, o.key); err != nil && !strings.Contains(err.Error(), pipeline.ErrNotFound.Error()) {
			return err
		}
		return nil
	}
	return tx.(pipeline.Prefetcher).Prefetch(ctx, []pipeline.Key{o.key})
}

// randomOps are n steps over keys pk/a..pk/<keys>: mostly Puts, with or
// without index entries (some shared by keys), an owner or an expiry,
// then Deletes, then reads.
func randomOps(rnd *rand.Rand, pk string, keys, n int) []op {
	ops := make([]op, n)
	for i := range ops {
		key := pipeline.Key{PK: pk, SK: string(rune('a' + rnd.IntN(keys)))}
		switch p := rnd.IntN(10); {
		case p < 6:
			var idx []pipeline.IndexEntry
			for range rnd.IntN(3) {
				idx = append(idx, pipeline.IndexEntry{Index: "gs" + fmt.Sprint(1+rnd.IntN(2)), Hash: "h" + fmt.Sprint(rnd.IntN(2)), Sort: fmt.Sprint(rnd.IntN(3))})
			}
			r := rec(key.PK, key.SK, idx...)
			r.Item = fmt.Appendf(nil, `{"step":%d,"deviceId":"dev-%d"}`, i, rnd.IntN(3))
			if rnd.IntN(4) == 0 {
				r.Item = fmt.Appendf(nil, `{"step":%d}`, i)
				r.Expires = 4_000_000_000_000 + int64(i)
			}
			r.Version = pipeline.Version{Wall: 1_700_000_000_000 + int64(i), Counter: uint32(rnd.IntN(5)), Origin: "o" + fmt.Sprint(rnd.IntN(2))}
			ops[i] = op{kind: "put", key: key, rec: r}
		case p < 8:
			ops[i] = op{kind: "delete", key: key}
		case p < 9:
			ops[i] = op{kind: "get", key: key}
		default:
			ops[i] = op{kind: "prefetch", key: key}
		}
	}
	return ops
}

// A transaction's writes, sent as one statement per kind, leave what the
// same writes leave applied one per transaction: items and entries alike.
// Random sequences of Puts, Deletes and reads over a few keys, each in one
// Update on one store and one Update per step on another.
func TestBatchedWritesEqualWritesOneByOne(t *testing.T) {
	batched, oneByOne := openStore(t, testConfig(t)), openStore(t, testConfig(t))
	conn := rawConn(t)
	log := logStatements(batched)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	for run := range 25 {
		pk := fmt.Sprintf("run%02d", run)
		// Some keys are stored before, with entries or not.
		before := randomOps(rnd, pk, 4, 4)
		ops := randomOps(rnd, pk, 4, 10+rnd.IntN(30))
		for _, s := range []*Store{batched, oneByOne} {
			update(t, s, func(tx pipeline.Tx) error {
				for _, o := range before {
					if err := o.run(t.Context(), tx); err != nil {
						return err
					}
				}
				return nil
			})
		}
		update(t, batched, func(tx pipeline.Tx) error {
			for _, o := range ops {
				if err := o.run(t.Context(), tx); err != nil {
					return err
				}
			}
			return nil
		})
		for _, o := range ops {
			update(t, oneByOne, func(tx pipeline.Tx) error { return o.run(t.Context(), tx) })
		}
		if got, want := dumpKeys(t, conn, batched, pk), dumpKeys(t, conn, oneByOne, pk); got != want {
			var steps []string
			for _, o := range ops {
				steps = append(steps, o.kind+" "+o.key.SK)
			}
			t.Fatalf("run %d (%s): in one update:\n%s\none by one:\n%s", run, strings.Join(steps, ", "), got, want)
		}
	}
	if n := log.count(batched.sql.upsert); n == 0 {
		t.Fatal("no upsert counted: the statement log sees nothing")
	}
}

// Two Puts of a key then a Delete of another then Puts again, in one
// Update: the key's rows are upserted by one statement per batch (its
// last Put only), and the state is that of the steps one by one.
func TestBatchedPutsOfOneKey(t *testing.T) {
	batched, oneByOne := openStore(t, testConfig(t)), openStore(t, testConfig(t))
	conn := rawConn(t)
	gone := rec("b", "gone", entry("g", "1"))
	putAll(t, batched, gone)
	putAll(t, oneByOne, gone)
	first, second := rec("b", "k", entry("h", "1"), entry("h", "2")), rec("b", "k", entry("h", "3"))
	second.Item = []byte(`{"second":true}`)
	third := rec("b", "k")
	third.Item = []byte(`{"third":true}`)
	ops := []op{
		{kind: "put", rec: first}, {kind: "put", rec: second}, {kind: "delete", key: gone.Key},
		{kind: "put", rec: rec("b", "other", entry("o", "1"))}, {kind: "put", rec: third},
		{kind: "put", rec: gone}, {kind: "put", rec: second},
	}
	log := logStatements(batched)
	update(t, batched, func(tx pipeline.Tx) error {
		for _, o := range ops {
			if err := o.run(t.Context(), tx); err != nil {
				return err
			}
		}
		return nil
	})
	if n := log.count(batched.sql.upsert); n != 1 {
		t.Errorf("%d upsert statements, want 1", n)
	}
	if n := log.count(batched.sql.insertEntries); n != 1 {
		t.Errorf("%d inserts of entries, want 1", n)
	}
	for _, o := range ops {
		update(t, oneByOne, func(tx pipeline.Tx) error { return o.run(t.Context(), tx) })
	}
	got, want := dumpKeys(t, conn, batched, "b"), dumpKeys(t, conn, oneByOne, "b")
	if got != want {
		t.Fatalf("in one update:\n%s\none by one:\n%s", got, want)
	}
	if !strings.Contains(got, `{"second":true}`) || !strings.Contains(got, "entry gs1|h|3|b|k") || strings.Contains(got, "entry gs1|h|1") {
		t.Fatalf("b/k is not the last Put's:\n%s", got)
	}
}

// More writes than one batch holds (maxPending keys), some keys written
// on both sides of a batch's end, end as the last write of each key.
func TestWritesBeyondOneBatch(t *testing.T) {
	s := openStore(t, testConfig(t))
	log := logStatements(s)
	const keys = maxPending + maxPending/2
	last := map[string]*pipeline.Record{}
	update(t, s, func(tx pipeline.Tx) error {
		for i := range 2 * keys {
			k := i % keys
			if i >= keys {
				k = (i * 7) % keys
			}
			sk := fmt.Sprintf("%05d", k)
			if i%5 == 4 {
				delete(last, sk)
				if err := tx.Delete(t.Context(), pipeline.Key{PK: "many", SK: sk}); err != nil {
					return err
				}
				continue
			}
			r := rec("many", sk, entry("h", fmt.Sprint(i)))
			r.Item = fmt.Appendf(nil, `{"i":%d}`, i)
			last[sk] = r
			if err := tx.Put(t.Context(), r); err != nil {
				return err
			}
		}
		return nil
	})
	if n := log.count(s.sql.upsert); n < 2 {
		t.Errorf("%d upsert statements, want one per batch of %d keys at least", n, maxPending)
	}
	var items, entries int
	err := rawConn(t).QueryRow(t.Context(), "SELECT (SELECT count(*) FROM "+s.n.items+"), (SELECT count(*) FROM "+s.n.entries+")").Scan(&items, &entries)
	if err != nil {
		t.Fatal(err)
	}
	if items != len(last) || entries != len(last) {
		t.Fatalf("%d items and %d entries, want %d of each", items, entries, len(last))
	}
	err = s.View(t.Context(), func(tx pipeline.ReadTx) error {
		for sk, want := range last {
			r, err := tx.Get(t.Context(), want.Key)
			if err != nil {
				return err
			}
			if string(r.Item) != string(want.Item) || fmt.Sprint(r.Indexes) != fmt.Sprint(want.Indexes) {
				return fmt.Errorf("%s: %s %v, want %s %v", sk, r.Item, r.Indexes, want.Item, want.Indexes)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
