package dynamodb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

const applySchemaText = `{
  format: 'onetable:1.1.0', version: '0.0.1',
  indexes: { primary: {hash: 'pk', sort: 'sk'} },
  params: {isoDates: true, timestamps: true},
  models: {
    Reading: {
      pk: {type: 'string', value: 'device#${deviceId}'},
      sk: {type: 'string', value: 'reading#${id}'},
      deviceId: {type: 'string', required: true},
      id: {type: 'string', required: true},
      temp: {type: 'number'},
    },
  },
  process: { Reading: {sync: 'up'} },
}`

// A device batch larger than one DynamoDB transaction is applied through
// the database in transactions of at most MaxWritesPerUpdate writes, with
// the one validation of received changes, and a second apply of the same
// batch changes nothing.
func TestDBApplyOfALargeBatch(t *testing.T) {
	ctx := context.Background()
	sch := parseSchema(t, applySchemaText)
	cfg := testConfig(t)
	st, err := Open(ctx, cfg, sch, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(ctx) })
	cloud, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "cloud", Side: schema.SideCloud})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	var changes []pipeline.Change
	for i := range 130 {
		id := fmt.Sprintf("r%03d", i)
		changes = append(changes, pipeline.Change{Model: "Reading", Op: pipeline.OpUpsert,
			Key:     pipeline.Key{PK: "device#dev1", SK: "reading#" + id},
			Item:    []byte(fmt.Sprintf(`{"deviceId":"dev1","id":%q,"temp":%d}`, id, i)),
			Version: pipeline.Version{Wall: now, Counter: uint32(i), Origin: "dev1"}, Origin: "dev1"})
	}
	bad := changes[7]
	bad.Key.PK = "device#dev2" // not the item's key: refused alone
	changes = append(changes, bad)
	src := db.Source{Site: "dev1", Owner: "deviceId"}
	for round, wantApplied := range []bool{true, false} {
		res, err := cloud.Apply(ctx, src, changes)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, r := range res[:130] {
			if r.Err != nil || r.Applied != wantApplied {
				t.Fatalf("round %d: change %d: applied %v, err %v", round, i, r.Applied, r.Err)
			}
		}
		if res[130].Err == nil {
			t.Fatalf("round %d: the change aimed at another key was applied", round)
		}
	}
	n := 0
	for _, err := range cloud.FindAll(ctx, "Reading", db.Item{"deviceId": "dev1"}, nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 130 {
		t.Fatalf("stored %d readings, want 130", n)
	}
}
