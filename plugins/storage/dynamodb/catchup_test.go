package dynamodb

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/dynamotest"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
	"github.com/iotod/iotod/schema"
)

// readCounting counts the table reads of a catch-up.
type readCounting struct {
	API
	scans, queries, read atomic.Int64
}

func (c *readCounting) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	c.scans.Add(1)
	out, err := c.API.Scan(ctx, in, opts...)
	if err == nil {
		c.read.Add(int64(len(out.Items)))
	}
	return out, err
}

func (c *readCounting) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.queries.Add(1)
	out, err := c.API.Query(ctx, in, opts...)
	if err == nil {
		c.read.Add(int64(len(out.Items)))
	}
	return out, err
}

// openCatchUpCloud opens a cloud database of plugintest.CatchUpSchema over a fresh
// table (with or without the catch-up indexes), counting its reads.
func openCatchUpCloud(t *testing.T, indexes bool) (*db.DB, *readCounting, string) {
	t.Helper()
	ctx := context.Background()
	sch := parseSchema(t, plugintest.CatchUpSchema)
	cfg := testConfig(t)
	cfg.CatchUpIndexes = indexes
	cfg.Stream = true // the outbox of a cloud on DynamoDB: removes need it
	c := &readCounting{}
	st, err := Open(ctx, cfg, sch, testLogger(t), WithSite("cloud"), WithAPI(func(a API) API { c.API = a; return c }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(ctx) })
	cloud, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "cloud", Side: schema.SideCloud})
	if err != nil {
		t.Fatal(err)
	}
	return cloud, c, cfg.Table
}

// command is a Command item as OneTable stores it, updated at, with a
// _version when iotod wrote it.
func command(device, id string, at time.Time, iotod bool) map[string]types.AttributeValue {
	when := at.UTC().Format(isoMillis)
	item := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "command#" + device}, "sk": &types.AttributeValueMemberS{Value: "command#" + id},
		"_type": &types.AttributeValueMemberS{Value: "Command"}, "deviceId": &types.AttributeValueMemberS{Value: device},
		"id": &types.AttributeValueMemberS{Value: id}, "n": &types.AttributeValueMemberN{Value: "1"},
		"created": &types.AttributeValueMemberS{Value: when}, "updated": &types.AttributeValueMemberS{Value: when},
	}
	if iotod {
		v := pipeline.Version{Wall: at.UnixMilli(), Origin: "cloud"}
		item[versionAttr] = &types.AttributeValueMemberS{Value: v.String()}
	}
	return item
}

// notice is a Notice item as iotod stores it.
func notice(id string, at time.Time) map[string]types.AttributeValue {
	when := at.UTC().Format(isoMillis)
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "notice"}, "sk": &types.AttributeValueMemberS{Value: "notice#" + id},
		"_type": &types.AttributeValueMemberS{Value: "Notice"}, "id": &types.AttributeValueMemberS{Value: id},
		"created": &types.AttributeValueMemberS{Value: when}, "updated": &types.AttributeValueMemberS{Value: when},
		versionAttr: &types.AttributeValueMemberS{Value: pipeline.Version{Wall: at.UnixMilli(), Origin: "cloud"}.String()},
	}
}

// putAll writes items with BatchWriteItem, 8 writers.
func putAll(t *testing.T, table string, items []map[string]types.AttributeValue) {
	t.Helper()
	client := dynamotest.Client(t)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(items)/25+1)
	for start := 0; start < len(items); start += 25 {
		chunk := items[start:min(start+25, len(items))]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs <- writeChunk(context.Background(), client, table, chunk)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// writeChunk is one BatchWriteItem of chunk, retrying unprocessed items.
func writeChunk(ctx context.Context, client *dynamodb.Client, table string, chunk []map[string]types.AttributeValue) error {
	reqs := make([]types.WriteRequest, len(chunk))
	for i, it := range chunk {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
	}
	pending := map[string][]types.WriteRequest{table: reqs}
	for len(pending) > 0 {
		out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return err
		}
		pending = out.UnprocessedItems
	}
	return nil
}

// A device offline for most of a week while the cloud wrote 1,000 (or
// IOTOD_CATCHUP_ITEMS)
// commands for it (half by iotod, half by OneTable or the SDK: no
// version) gets every one of them, the notices every device gets, and
// the removes of its own items, through the catch-up indexes: nothing of
// another device is read or sent, and the table is never scanned.
func TestCatchUpFromTheIndexes(t *testing.T) {
	n := 1000 // DynamoDB Local writes slowly with indexes and a stream
	if testing.Short() {
		n = 100
	}
	if s := os.Getenv("IOTOD_CATCHUP_ITEMS"); s != "" {
		n, _ = strconv.Atoi(s) // the 10,000, by hand
	}
	ctx := context.Background()
	cloud, reads, table := openCatchUpCloud(t, true)
	now := time.Now()
	cursor := pipeline.Version{Wall: now.Add(-6 * 24 * time.Hour).UnixMilli(), Origin: "cloud"}

	var items []map[string]types.AttributeValue
	want := map[string]bool{}
	for i := range n {
		at := now.Add(-time.Duration(i) * (6 * 24 * time.Hour) / time.Duration(n+1))
		id := fmt.Sprintf("c%05d", i)
		items = append(items, command("dev-a", id, at, i%2 == 0))
		want["Command "+id] = true
	}
	for i := range 500 {
		items = append(items, command("dev-b", fmt.Sprintf("b%03d", i), now.Add(-time.Hour), i%2 == 0))
	}
	// Before the cursor: the device has it already.
	items = append(items, command("dev-a", "old", now.Add(-7*24*time.Hour), true))
	for i := range 20 {
		id := fmt.Sprintf("n%02d", i)
		items = append(items, notice(id, now.Add(-time.Minute)))
		want["Notice "+id] = true
	}
	for _, dev := range []string{"dev-a", "dev-b"} {
		items = append(items, command(dev, "gone-"+dev, now.Add(-time.Minute), true))
	}
	putAll(t, table, items)
	// Removes replicated from each device leave tombstones with their
	// owner: dev-a gets its own, not dev-b's.
	for _, dev := range []string{"dev-a", "dev-b"} {
		id := "gone-" + dev
		rm := pipeline.Change{Model: "Command", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "command#" + dev, SK: "command#" + id},
			Version: pipeline.Version{Wall: time.Now().UnixMilli() + 1, Origin: dev}, Origin: dev}
		res, err := cloud.Apply(ctx, db.Source{Site: dev, Owner: "deviceId"}, []pipeline.Change{rm})
		if err != nil || res[0].Err != nil || !res[0].Applied {
			t.Fatalf("remove %s: %v %+v", id, err, res)
		}
	}
	want["remove Command gone-dev-a"] = true

	reads.scans.Store(0)
	reads.queries.Store(0)
	reads.read.Store(0)
	t0 := time.Now()
	got := catchUp(t, cloud, "dev-a", cursor)
	t.Logf("catch-up of %d changes: %d items read in %d queries, %s", len(got), reads.read.Load(), reads.queries.Load(), time.Since(t0).Round(time.Millisecond))
	if missing, extra := diff(want, got); len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("catch-up of dev-a: %d missing (%.5q), %d extra (%.5q) of %d", len(missing), missing, len(extra), extra, len(got))
	}
	if s := reads.scans.Load(); s != 0 {
		t.Errorf("the catch-up scanned the table %d times", s)
	}
	// What was read: dev-a's commands since the cursor (less the clock
	// slack), the notices, the tombstones; not dev-b's 500 commands.
	if r := reads.read.Load(); r > int64(n+20+2+10) {
		t.Errorf("the catch-up read %d items for %d changes: it read other devices' items", r, len(want))
	}

	// A full resync (no cursor) sends the old command too.
	all := catchUp(t, cloud, "dev-a", pipeline.Version{})
	if !all["Command old"] || len(all) != len(want)+1 {
		t.Errorf("full resync of dev-a: %d changes, old command there: %v", len(all), all["Command old"])
	}
}

// Without the catch-up indexes (a table OneTable created, or
// catch_up_indexes off) a catch-up walks the table, with the same result.
func TestCatchUpWithoutTheIndexesScans(t *testing.T) {
	for _, indexes := range []bool{true, false} {
		t.Run(fmt.Sprintf("indexes=%v", indexes), func(t *testing.T) {
			cloud, reads, table := openCatchUpCloud(t, indexes)
			now := time.Now()
			putAll(t, table, []map[string]types.AttributeValue{
				command("dev-a", "a1", now.Add(-time.Minute), true),
				command("dev-a", "a2", now.Add(-time.Minute), false),
				command("dev-b", "b1", now.Add(-time.Minute), true),
				notice("n1", now.Add(-time.Minute)),
			})
			reads.scans.Store(0)
			got := catchUp(t, cloud, "dev-a", pipeline.Version{Wall: now.Add(-time.Hour).UnixMilli(), Origin: "cloud"})
			want := map[string]bool{"Command a1": true, "Command a2": true, "Notice n1": true}
			if missing, extra := diff(want, got); len(missing) > 0 || len(extra) > 0 {
				t.Fatalf("missing %v, extra %v", missing, extra)
			}
			if scanned := reads.scans.Load() > 0; scanned == indexes {
				t.Errorf("scanned %v with indexes %v", scanned, indexes)
			}
		})
	}
}

// catchUp runs what the cloud's responder runs for site (owner
// attribute deviceId), keeping the down models, and names each change.
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
		if err := c.Validate(); err != nil {
			return fmt.Errorf("%s %s: %w", c.Model, c.Key, err)
		}
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

func diff(want, got map[string]bool) (missing, extra []string) {
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	return missing, extra
}
