package db_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
)

// FuzzApply sends arbitrary changes from device dev1 to a cloud holding
// dev2's items: Apply never panics and never fails as a store; a refused
// change leaves the store as it was; an applied one is stored at its own
// key, as a valid item of its model, owned by dev1 or by nobody.
func FuzzApply(f *testing.F) {
	testenv.NeedBadger(f)
	now := time.Now().UnixMilli()
	f.Add("Reading", "upsert", "device#dev1", "reading#R1", []byte(`{"deviceId":"dev1","id":"R1","temp":1}`), now, uint32(0), "dev1")
	f.Add("Reading", "upsert", "device#dev2", "reading#R1", []byte(`{"deviceId":"dev2","id":"R1","temp":1}`), now, uint32(0), "dev1")
	f.Add("Setting", "remove", "device#dev2", "reading#R1", []byte(nil), now, uint32(0), "dev1")
	f.Add("Status", "upsert", "status#S1", "status#", []byte(`{"id":"S1","temp":1e400}`), now, uint32(7), "dev1")
	f.Add("Reading", "create", "device#dev1", "reading#R2", []byte(`{"_type":"Command","deviceId":"dev1","id":"R2","blob":{"a":[[[{}]]]}}`), int64(1)<<62, ^uint32(0), "dev1")
	f.Add("Setting", "upsert", "device#dev1", "n", []byte(`{"pk":"device#dev1","sk":"n","deviceId":"dev1","name":"n","value":"\u0000"}`), now, uint32(0), "dev1")

	// Every hostile change of the table test is a seed too.
	if raw, err := os.ReadFile("testdata/hostile-changes.yaml"); err == nil {
		var cases []hostileCase
		if yaml.Unmarshal(raw, &cases) == nil {
			for _, hc := range cases {
				c := hc.change(f, time.Now())
				f.Add(c.Model, string(c.Op), c.Key.PK, c.Key.SK, []byte(c.Item), c.Version.Wall, c.Version.Counter, c.Origin)
			}
		}
	}

	ctx := context.Background()
	sch, err := schema.Load("testdata/hostile-schema.json5")
	if err != nil {
		f.Fatal(err)
	}
	cfg := badger.NewDefaultConfig()
	cfg.Path = f.TempDir()
	cfg.Durability = badger.DurabilityAsync
	st, err := badger.Open(ctx, cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close(ctx) })
	cloud, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "cloud", Side: schema.SideCloud})
	if err != nil {
		f.Fatal(err)
	}
	seed := []pipeline.Change{
		{Model: "Reading", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "device#dev2", SK: "reading#R1"}, Item: []byte(`{"deviceId":"dev2","id":"R1"}`), Version: pipeline.Version{Wall: now - 60000, Origin: "dev2"}, Origin: "dev2"},
		{Model: "Status", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "status#S1", SK: "status#"}, Item: []byte(`{"id":"S1","deviceId":"dev2"}`), Version: pipeline.Version{Wall: now - 60000, Origin: "dev2"}, Origin: "dev2"},
	}
	if _, err := cloud.Apply(ctx, db.Source{Site: "dev2", Owner: "deviceId"}, seed); err != nil {
		f.Fatal(err)
	}
	checker := db.NewChecker(sch)

	f.Fuzz(func(t *testing.T, model, op, pk, sk string, item []byte, wall int64, counter uint32, origin string) {
		c := pipeline.Change{Model: model, Op: pipeline.Op(op), Key: pipeline.Key{PK: pk, SK: sk}, Item: item,
			Version: pipeline.Version{Wall: wall, Counter: counter, Origin: origin}, Origin: origin}
		before := snapshot(t, st)
		res, err := cloud.Apply(ctx, db.Source{Site: "dev1", Owner: "deviceId"}, []pipeline.Change{c})
		if err != nil {
			t.Fatalf("Apply failed as a store: %v", err)
		}
		after := snapshot(t, st)
		if res[0].Err != nil {
			if r := pipeline.Reason(res[0].Err); !utf8.ValidString(r) || len(r) > pipeline.MaxReasonLen {
				t.Fatalf("reason not bounded UTF-8: %q", r)
			}
			if len(before) != len(after) {
				t.Fatalf("a refused change changed the store: %v", res[0].Err)
			}
			for k, v := range before {
				if after[k] != v {
					t.Fatalf("a refused change moved %s: %v", k, res[0].Err)
				}
			}
			return
		}
		for k, v := range before {
			if k != c.Key && after[k] != v {
				t.Fatalf("an applied change moved another key %s", k)
			}
		}
		if !res[0].Applied {
			return
		}
		var rec *pipeline.Record
		_ = st.View(ctx, func(tx pipeline.ReadTx) error { rec, err = tx.Get(ctx, c.Key); return err })
		if err != nil || rec == nil {
			t.Fatalf("applied change not stored: %v", err)
		}
		if c.Op == pipeline.OpRemove {
			return
		}
		var stored map[string]any
		dec := json.NewDecoder(bytesReader(rec.Item))
		dec.UseNumber()
		if err := dec.Decode(&stored); err != nil {
			t.Fatalf("stored item unreadable: %v", err)
		}
		if err := checker.Check(model, stored); err != nil {
			t.Fatalf("stored item invalid: %v", err)
		}
		if owner, ok := stored["deviceId"].(string); ok && owner != "dev1" {
			t.Fatalf("dev1 stored an item owned by %q", owner)
		}
		if stored["pk"] != c.Key.PK || stored["sk"] != c.Key.SK {
			t.Fatalf("item stored at %s has key %v/%v", c.Key, stored["pk"], stored["sk"])
		}
	})
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
