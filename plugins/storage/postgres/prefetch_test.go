package postgres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iotod/iotod/pipeline"
)

// A Prefetch of keys, some stored and some missing (and one twice), on a
// table holding other rows too, reads exactly the stored ones: the Gets
// that follow find those and only those.
func TestPrefetchReadsExactlyThePresentKeys(t *testing.T) {
	s := openStore(t, testConfig(t))
	var recs []*pipeline.Record
	for i := range 40 {
		recs = append(recs, rec("pf", fmt.Sprintf("%03d", i), pipeline.IndexEntry{Index: "gs1", Hash: "h", Sort: fmt.Sprint(i)}))
	}
	putAll(t, s, recs...)
	var keys []pipeline.Key
	present := map[pipeline.Key]bool{}
	for i := 0; i < 60; i += 3 { // 0..39 stored, 40..59 missing
		k := pipeline.Key{PK: "pf", SK: fmt.Sprintf("%03d", i)}
		keys = append(keys, k)
		present[k] = i < 40
	}
	keys = append(keys, keys[1], pipeline.Key{PK: "other", SK: "000"}, pipeline.Key{})
	check := func(tx pipeline.ReadTx, rt *readTx) error {
		if err := tx.(pipeline.Prefetcher).Prefetch(t.Context(), keys); err != nil {
			return err
		}
		if len(rt.cache) != len(keys)-1 {
			return fmt.Errorf("prefetch cached %d keys, want %d", len(rt.cache), len(keys)-1)
		}
		for _, k := range keys {
			r, cached := rt.cache[k]
			switch {
			case !cached:
				return fmt.Errorf("prefetch did not cache %s", k)
			case present[k] && (r == nil || r.Key != k || string(r.Item) != fmt.Sprintf(`{"pk":%q,"sk":%q}`, k.PK, k.SK)):
				return fmt.Errorf("prefetch of stored %s read %+v", k, r)
			case !present[k] && r != nil:
				return fmt.Errorf("prefetch of missing %s read %+v", k, r)
			}
		}
		return nil
	}
	err := s.Update(t.Context(), func(tx pipeline.Tx) error { return check(tx, &tx.(*writeTx).readTx) })
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	err = s.View(t.Context(), func(tx pipeline.ReadTx) error { return check(tx, tx.(*readTx)) })
	if err != nil {
		t.Fatalf("view: %v", err)
	}
}

// Prefetch's query looks each key up in the primary key's index, on a
// table of a few rows (where the planner would otherwise scan the table,
// taking a serializable read lock on all of it) as on a larger one.
func TestPrefetchUsesThePrimaryKeyIndex(t *testing.T) {
	s := openStore(t, testConfig(t))
	conn := rawConn(t)
	explain := func(keys int) string {
		t.Helper()
		pks, sks := make([][]byte, keys), make([][]byte, keys)
		for i := range keys {
			pks[i], sks[i] = []byte("ix"), fmt.Appendf(nil, "%05d", i)
		}
		tx, err := conn.BeginTx(t.Context(), updateTxOptions)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(t.Context()) }()
		rows, err := tx.Query(t.Context(), "EXPLAIN "+s.sql.getMany, pks, sks)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	analyze := func() {
		t.Helper()
		if _, err := conn.Exec(t.Context(), "ANALYZE "+s.n.items); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int{3, 2000} {
		var recs []*pipeline.Record
		for i := range size {
			recs = append(recs, rec("ix", fmt.Sprintf("%05d", i)))
		}
		putAll(t, s, recs...)
		analyze()
		for _, keys := range []int{2, 500} {
			plan := explain(keys)
			if !strings.Contains(plan, "items_pkey") || strings.Contains(plan, "Seq Scan on items") {
				t.Errorf("%d keys on a table of about %d rows: the plan does not look them up in items_pkey:\n%s", keys, size, plan)
			}
		}
	}
}
