package dynamodb

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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

// openApplyCloud opens a cloud database over the store on a fresh table
// of applySchemaText.
func openApplyCloud(t *testing.T, opts ...Option) *db.DB {
	t.Helper()
	ctx := context.Background()
	sch := parseSchema(t, applySchemaText)
	st, err := Open(ctx, testConfig(t), sch, testLogger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(ctx) })
	cloud, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "cloud", Side: schema.SideCloud})
	if err != nil {
		t.Fatal(err)
	}
	return cloud
}

// readings are n upserts of dev1's readings, ids prefix000 on.
func readings(prefix string, n int) []pipeline.Change {
	now := time.Now().UnixMilli()
	changes := make([]pipeline.Change, 0, n)
	for i := range n {
		id := fmt.Sprintf("%s%03d", prefix, i)
		changes = append(changes, pipeline.Change{Model: "Reading", Op: pipeline.OpUpsert,
			Key:     pipeline.Key{PK: "device#dev1", SK: "reading#" + id},
			Item:    []byte(fmt.Sprintf(`{"deviceId":"dev1","id":%q,"temp":%d}`, id, i)),
			Version: pipeline.Version{Wall: now, Counter: uint32(i), Origin: "dev1"}, Origin: "dev1"})
	}
	return changes
}

// A device batch larger than one DynamoDB transaction is applied through
// the database in transactions of at most MaxWritesPerUpdate writes, with
// the one validation of received changes, and a second apply of the same
// batch changes nothing.
func TestDBApplyOfALargeBatch(t *testing.T) {
	ctx := context.Background()
	cloud := openApplyCloud(t)
	changes := readings("r", 130)
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

// counting counts the single and batched reads the store makes.
type counting struct {
	API
	gets, batchGets atomic.Int64
}

func (c *counting) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.gets.Add(1)
	return c.API.GetItem(ctx, in, opts...)
}

func (c *counting) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	c.batchGets.Add(1)
	return c.API.BatchGetItem(ctx, in, opts...)
}

// db.Apply reads a chunk's keys with batched reads, not one GetItem per
// change; the result is the same (a second apply is a no-op, a change
// whose key cannot be held is refused without failing the batch's read).
func TestDBApplyPrefetchesItsKeys(t *testing.T) {
	ctx := context.Background()
	c := &counting{}
	cloud := openApplyCloud(t, WithAPI(func(a API) API { c.API = a; return c }))
	changes := readings("p", 40)
	huge := changes[0]
	huge.Key.SK = strings.Repeat("s", 5000) // over DynamoDB's key limit: refused alone
	changes = append(changes, huge)
	src := db.Source{Site: "dev1", Owner: "deviceId"}
	for round, want := range []bool{true, false} {
		c.gets.Store(0)
		c.batchGets.Store(0)
		res, err := cloud.Apply(ctx, src, changes)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, r := range res[:40] {
			if r.Err != nil || r.Applied != want {
				t.Fatalf("round %d: change %d: applied %v, err %v", round, i, r.Applied, r.Err)
			}
		}
		if res[40].Err == nil {
			t.Fatalf("round %d: the change with an oversized key was applied", round)
		}
		if g, b := c.gets.Load(), c.batchGets.Load(); g != 0 || b != 1 {
			t.Fatalf("round %d: %d GetItems and %d BatchGetItems, want 0 and 1", round, g, b)
		}
	}
}
