package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
	"github.com/iotod/iotod/schema"
)

// owned is a record of model at pk/sk whose item names its device (none
// when device is empty), changed at wall.
func owned(model, pk, sk, device string, wall int64) *pipeline.Record {
	item := fmt.Sprintf(`{"id":%q}`, sk)
	if device != "" {
		item = fmt.Sprintf(`{"id":%q,"deviceId":%q}`, sk, device)
	}
	return &pipeline.Record{Key: pipeline.Key{PK: pk, SK: sk}, Model: model, Item: []byte(item),
		Version: pipeline.Version{Wall: wall, Origin: "cloud"}}
}

func putAll(t *testing.T, s *Store, recs ...*pipeline.Record) {
	t.Helper()
	err := s.Update(t.Context(), func(tx pipeline.Tx) error {
		for _, r := range recs {
			if err := tx.Put(t.Context(), r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
}

// find runs FindChanges and names what it found "pk/sk", sorted.
func find(t *testing.T, s *Store, q pipeline.ChangeQuery) []string {
	t.Helper()
	var got []string
	err := s.FindChanges(t.Context(), q, func(r *pipeline.Record) (bool, error) {
		got = append(got, r.Key.PK+"/"+r.Key.SK)
		return true, nil
	})
	if err != nil {
		t.Fatalf("find changes %+v: %v", q, err)
	}
	sort.Strings(got)
	return got
}

// FindChanges reads the device's records (by the owner attribute of the
// item, or of the tombstone), the broadcast models' and the unowned
// tombstones, changed since the cursor or without a version, live ones
// only, each once, across pages.
func TestFindChanges(t *testing.T) {
	s := openStore(t, testConfig(t))
	now := time.Now()
	recent, old := now.Add(-time.Minute).UnixMilli(), now.Add(-48*time.Hour).UnixMilli()
	var want []string
	var recs []*pipeline.Record
	for i := range findPage + 20 { // more than a page
		r := owned("Command", "command#dev-a", fmt.Sprintf("c%04d", i), "dev-a", recent+int64(i%7))
		recs = append(recs, r)
		want = append(want, r.Key.PK+"/"+r.Key.SK)
	}
	unversioned := owned("Command", "command#dev-a", "unversioned", "dev-a", 0)
	notice := owned("Notice", "notice", "n1", "", recent)
	tombA := &pipeline.Record{Key: pipeline.Key{PK: "command#dev-a", SK: "gone"}, Model: tombstoneModel,
		Item: []byte(`{"model":"Command","owner":"dev-a"}`), Version: pipeline.Version{Wall: recent, Origin: "dev-a"}}
	tombNone := &pipeline.Record{Key: pipeline.Key{PK: "notice", SK: "gone"}, Model: tombstoneModel,
		Item: []byte(`{"model":"Notice"}`), Version: pipeline.Version{Wall: recent, Origin: "cloud"}}
	want = append(want, "command#dev-a/unversioned", "notice/n1", "command#dev-a/gone", "notice/gone")
	recs = append(recs, unversioned, notice, tombA, tombNone)
	// Not for dev-a: another device's items and tombstones, its own before
	// the cursor, expired, of a model not broadcast, internal records.
	tombB := &pipeline.Record{Key: pipeline.Key{PK: "command#dev-b", SK: "gone"}, Model: tombstoneModel,
		Item: []byte(`{"model":"Command","owner":"dev-b"}`), Version: pipeline.Version{Wall: recent, Origin: "dev-b"}}
	expired := owned("Command", "command#dev-a", "expired", "dev-a", recent)
	expired.Expires = now.Add(-time.Second).UnixMilli()
	recs = append(recs, tombB, expired,
		owned("Command", "command#dev-b", "b1", "dev-b", recent),
		owned("Command", "command#dev-a", "old", "dev-a", old),
		owned("Reading", "reading", "r1", "", recent),
		&pipeline.Record{Key: pipeline.Key{PK: "~meta", SK: "x"}, Model: "~meta", Item: []byte(`{"deviceId":"dev-a"}`), Version: pipeline.Version{Wall: recent}})
	putAll(t, s, recs...)
	sort.Strings(want)

	q := pipeline.ChangeQuery{Owner: "deviceId", Site: "dev-a", Broadcast: []string{"Notice"}, Since: now.Add(-time.Hour)}
	if got := find(t, s, q); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("found %d:\n%q\nwant %d:\n%q", len(got), got, len(want), want)
	}
	// No cursor: the old one too.
	q.Since = time.Time{}
	if got := find(t, s, q); len(got) != len(want)+1 {
		t.Fatalf("full resync found %d, want %d", len(got), len(want)+1)
	}
	// fn stops the walk.
	n := 0
	err := s.FindChanges(t.Context(), q, func(*pipeline.Record) (bool, error) { n++; return n < 3, nil })
	if err != nil || n != 3 {
		t.Fatalf("stopped walk: %d records, %v", n, err)
	}
	// Another owner attribute: the caller walks the store.
	q.Owner = "siteId"
	if err := s.FindChanges(t.Context(), q, func(*pipeline.Record) (bool, error) { return true, nil }); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("other owner attribute: got %v, want ErrUnsupported", err)
	}
}

// counting counts how a catch-up reads the store.
type counting struct {
	*Store
	views, finds atomic.Int64
}

func (c *counting) View(ctx context.Context, fn func(pipeline.ReadTx) error) error {
	c.views.Add(1)
	return c.Store.View(ctx, fn)
}

func (c *counting) FindChanges(ctx context.Context, q pipeline.ChangeQuery, fn func(*pipeline.Record) (bool, error)) error {
	c.finds.Add(1)
	return c.Store.FindChanges(ctx, q, fn)
}

// A cloud database on the store answers a device's catch-up from the
// catch-up indexes, never walking the store: the device's commands since
// its cursor, every notice, the removes of its own commands.
func TestCatchUpThroughTheDatabase(t *testing.T) {
	ctx := context.Background()
	sch, err := schema.ParseBytes([]byte(plugintest.CatchUpSchema), "json5", "catch-up schema")
	if err != nil {
		t.Fatal(err)
	}
	st := &counting{Store: openStore(t, testConfig(t))}
	now := time.Now()
	openDB := func(at time.Time) *db.DB {
		d, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "cloud", Side: schema.SideCloud,
			Now: func() time.Time { return at.Add(time.Since(now)) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close(ctx) })
		return d
	}
	cloud, past := openDB(now), openDB(now.Add(-48*time.Hour))
	create := func(d *db.DB, model string, item db.Item) {
		t.Helper()
		if _, err := d.Create(ctx, model, item, nil); err != nil {
			t.Fatalf("create %s %v: %v", model, item, err)
		}
	}
	want := map[string]bool{}
	for i := range 40 {
		id := fmt.Sprintf("a%02d", i)
		create(cloud, "Command", db.Item{"deviceId": "dev-a", "id": id, "n": i})
		want["Command "+id] = true
		create(cloud, "Command", db.Item{"deviceId": "dev-b", "id": fmt.Sprintf("b%02d", i)})
	}
	for i := range 5 {
		id := fmt.Sprintf("n%d", i)
		create(cloud, "Notice", db.Item{"id": id})
		want["Notice "+id] = true
	}
	create(cloud, "Reading", db.Item{"deviceId": "dev-a", "id": "r1"})
	create(past, "Command", db.Item{"deviceId": "dev-a", "id": "old"})
	for _, dev := range []string{"dev-a", "dev-b"} {
		create(cloud, "Command", db.Item{"deviceId": dev, "id": "gone-" + dev})
		rm := pipeline.Change{Model: "Command", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "command#" + dev, SK: "command#gone-" + dev},
			Version: pipeline.Version{Wall: time.Now().UnixMilli() + 5, Origin: dev}, Origin: dev}
		res, err := cloud.Apply(ctx, db.Source{Site: dev, Owner: "deviceId"}, []pipeline.Change{rm})
		if err != nil || res[0].Err != nil || !res[0].Applied {
			t.Fatalf("remove of %s's command: %v %+v", dev, err, res)
		}
	}
	want["remove Command gone-dev-a"] = true

	st.views.Store(0)
	got := catchUp(t, cloud, "dev-a", pipeline.Version{Wall: now.Add(-time.Hour).UnixMilli(), Origin: "cloud"})
	if fmt.Sprint(sortedKeys(got)) != fmt.Sprint(sortedKeys(want)) {
		t.Fatalf("catch-up of dev-a:\n got %q\nwant %q", sortedKeys(got), sortedKeys(want))
	}
	if st.finds.Load() != 1 || st.views.Load() != 0 {
		t.Fatalf("the catch-up used FindChanges %d times and walked the store %d times, want once and never", st.finds.Load(), st.views.Load())
	}
	// A full resync sends the old command too.
	if all := catchUp(t, cloud, "dev-a", pipeline.Version{}); !all["Command old"] || len(all) != len(want)+1 {
		t.Fatalf("full resync of dev-a: %d changes, old command there: %v", len(all), all["Command old"])
	}
}

// catchUp runs what the cloud's responder runs for site (owner attribute
// deviceId), keeping the down models, and names each change.
func catchUp(t *testing.T, cloud *db.DB, site string, since pipeline.Version) map[string]bool {
	t.Helper()
	down := map[string]bool{"Command": true, "Notice": true}
	keep := func(model string, item db.Item) bool {
		if !down[model] {
			return false
		}
		owner, ok := item["deviceId"].(string)
		return item == nil || !ok || owner == site
	}
	var mu sync.Mutex
	got := map[string]bool{}
	err := cloud.ChangesSince(context.Background(), db.CatchUp{Site: site, Owner: "deviceId", Since: since, Keep: keep}, func(c pipeline.Change) error {
		if c.Version.Compare(since) <= 0 {
			return fmt.Errorf("%s %s: version %s is not after the cursor", c.Model, c.Key, c.Version)
		}
		name := c.Model + " " + c.Key.SK[len("command#"):]
		if c.Model == "Notice" {
			name = c.Model + " " + c.Key.SK[len("notice#"):]
		}
		if c.Op == pipeline.OpRemove {
			name = "remove " + name
		}
		mu.Lock()
		defer mu.Unlock()
		if got[name] {
			return fmt.Errorf("%s sent twice", name)
		}
		got[name] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
