package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/dynamotest"
	"github.com/iotod/iotod/internal/onetable"
)

// ddbRig is a device and cloud workers whose cloud store is one fresh
// DynamoDB Local table, each an `iotod run` process.
type ddbRig struct {
	t       *testing.T
	table   string
	url     string
	schema  string           // every node's schema (dynamoSchemaPath)
	client  *dynamodb.Client // the SDK on url
	addr    string           // the broker
	mosq    *mosquitto
	workers []*node
	dev     *node
	sites   []string
}

// newDynamoRig starts the broker (embedded in worker 1 for inCloud), the
// workers on a fresh table of the tests' DynamoDB Local (created by worker
// 1's create_table, deleted at the end) and the device dev-1.
func newDynamoRig(t *testing.T, kind brokerKind, workers int) *ddbRig {
	t.Helper()
	iotodBin(t) // skips under -short before anything starts
	return newDynamoRigAt(t, kind, workers, dynamotest.URL(t))
}

// newDynamoRigAt is newDynamoRig on the DynamoDB (Local) at url.
func newDynamoRigAt(t *testing.T, kind brokerKind, workers int, url string) *ddbRig {
	t.Helper()
	iotodBin(t)
	r := &ddbRig{t: t, url: url, schema: dynamoSchemaPath(t), client: ddbClient(url),
		table: dynamotest.UniqueName("iotod-e2e"), sites: []string{"dev-1"}}
	t.Cleanup(func() { // registered first: runs after the processes are gone
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = r.client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(r.table)})
	})
	switch kind {
	case viaMosquitto:
		r.mosq = startMosquitto(t)
		r.addr = r.mosq.addr
	case ownProcess:
		r.addr = freeAddr(t)
		startNode(t, "broker", brokerOnlyConfig(t, r.addr, r.sites))
	default:
		r.addr = freeAddr(t)
	}
	for w := 1; w <= workers; w++ {
		embedded := ""
		if kind == inCloud && w == 1 {
			embedded = r.addr
		}
		r.workers = append(r.workers, startNode(t, fmt.Sprintf("worker-%d", w), r.cloudConfig(w, embedded)))
	}
	r.dev = startNode(t, "dev-1", withSchema(t, deviceConfig(t, "dev-1", r.addr), r.schema))
	return r
}

// dynamoSchemaPath is the DynamoDB tests' schema (the e2e schema with the
// index gs1), as an absolute path.
func dynamoSchemaPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("testdata/schema-dynamodb.json5")
	require.NoError(t, err)
	return p
}

// withSchema is a node's config (made with schemaPath) on another schema.
func withSchema(t *testing.T, config, schema string) string {
	t.Helper()
	line := "\nschema: " + schemaPath(t) + "\n"
	require.Contains(t, config, line)
	return strings.Replace(config, line, "\nschema: "+schema+"\n", 1)
}

// ddbClient is an SDK client of the DynamoDB (Local) at url, configured as
// dynamotest.Client.
func ddbClient(url string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String(url), Region: dynamotest.Region,
		Credentials:                     credentials.NewStaticCredentialsProvider("iotod", "iotod", ""),
		DisableValidateResponseChecksum: true,
	})
}

// separateBroker is mosquitto when the tests have it, else the embedded
// broker in a process of its own: a broker that outlives the workers.
func separateBroker() brokerKind {
	if _, ok := haveMosquitto(); ok {
		return viaMosquitto
	}
	return ownProcess
}

// cloudConfig is e2e's cloud worker (cloudConfig in configs_test.go) with
// its cloud store on the rig's table.
func (r *ddbRig) cloudConfig(worker int, embeddedAt string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "site: cloud\nschema: %s\n", r.schema)
	if embeddedAt != "" {
		b.WriteString(brokerSection(embeddedAt, r.sites))
	}
	fmt.Fprintf(&b, `storage:
  cloud:
    type: dynamodb
    table: %s
    region: %s
    endpoint: %s
    create_table: true
    access_key_id: iotod
    secret_access_key: iotod
    side: cloud
    site: cloud-%d
`, r.table, dynamotest.Region, r.url, worker)
	b.WriteString(workerPipelines(r.addr, worker))
	return b.String()
}

// get reads one item of the table with the AWS SDK (consistent), as plain
// values (S as string, N as its text, BOOL as bool); nil when absent.
func (r *ddbRig) get(pk, sk string) map[string]any {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := r.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(r.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
	})
	require.NoError(r.t, err, "get %s|%s from %s", pk, sk, r.table)
	if out.Item == nil {
		return nil
	}
	return plain(out.Item)
}

// plain turns an item's scalar attributes into Go values (maps and lists
// are left out: the tests' models have none).
func plain(item map[string]types.AttributeValue) map[string]any {
	m := map[string]any{}
	for k, v := range item {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			m[k] = v.Value
		case *types.AttributeValueMemberN:
			m[k] = v.Value
		case *types.AttributeValueMemberBOOL:
			m[k] = v.Value
		case *types.AttributeValueMemberNULL:
			m[k] = nil
		}
	}
	return m
}

// putCommand writes a Command for device into the table with the SDK, as a
// writer outside iotod does: no version, its updated time given.
func (r *ddbRig) putCommand(ctx context.Context, device, id string, n int, updated time.Time) error {
	at := updated.UTC().Format("2006-01-02T15:04:05.000Z")
	_, err := r.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(r.table), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "command#" + device}, "sk": &types.AttributeValueMemberS{Value: "command#" + id},
		"_type":    &types.AttributeValueMemberS{Value: "Command"},
		"deviceId": &types.AttributeValueMemberS{Value: device}, "id": &types.AttributeValueMemberS{Value: id},
		"command": &types.AttributeValueMemberS{Value: "set"}, "n": &types.AttributeValueMemberN{Value: fmt.Sprint(n)},
		"created": &types.AttributeValueMemberS{Value: at}, "updated": &types.AttributeValueMemberS{Value: at},
	}})
	return err
}

// oneTable runs a OneTable request on the rig's table with the rig's schema.
func (r *ddbRig) oneTable(op, model string, props map[string]any) map[string]any {
	r.t.Helper()
	return r.oneTableWith(op, model, props, nil)
}

// oneTableWith is oneTable with OneTable's params (index, hidden, ...).
func (r *ddbRig) oneTableWith(op, model string, props, params map[string]any) map[string]any {
	r.t.Helper()
	doc, err := onetable.LoadSchema(r.schema)
	require.NoError(r.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := onetable.Run(ctx, onetable.Request{Endpoint: r.url, Region: dynamotest.Region, Table: r.table, Schema: doc,
		Op: op, Model: model, Properties: props, Params: params})
	require.NoError(r.t, err, "onetable %s %s %v %v", op, model, props, params)
	var item map[string]any
	require.NoError(r.t, json.Unmarshal(out, &item), "onetable %s: %s", op, out)
	return item
}

// normal is v through JSON, so numbers compare as numbers whatever their Go type.
func normal(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// visible drops the hidden attributes (version, keys) that one side shows
// and the other does not.
func visible(it map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range it {
		if k == db.VersionAttr || k == "pk" || k == "sk" || strings.HasPrefix(k, "_") {
			continue
		}
		out[k] = v
	}
	return out
}

// leasesTaken counts the stream shard leases a worker's log says it took
// (the stream's metrics are not on iotod's /metrics).
func leasesTaken(n *node) int {
	return strings.Count(n.logText(), `msg="dynamodb stream shard lease taken"`)
}

// TestDynamoDBBothWays: a device and a cloud worker on DynamoDB Local, as
// separate processes over the worker's embedded broker. The device's
// Readings and Setting are in the table at the device's versions and read
// back by OneTable with every field equal, by key and (the Readings) by
// OneTable's finds on the global index gs1; a Command the worker's API
// writes and one OneTable writes straight into the table reach the
// device; nothing the device wrote comes back to it, and the device sends
// nothing of the cloud's up.
func TestDynamoDBBothWays(t *testing.T) {
	r := newDynamoRig(t, inCloud, 1)
	ctx := context.Background()
	dev, cloud := r.dev.client(), r.workers[0].client()

	var written []db.Item
	for i := range 3 {
		// Notes against the order of writing: gs1 sorts them otherwise than the primary key.
		it, err := dev.Create(ctx, "Reading", db.Item{"deviceId": "dev-1", "value": 20.5 + float64(i), "note": fmt.Sprintf("n%d", 2-i)}, nil)
		require.NoError(t, err)
		written = append(written, it)
	}
	_, err := dev.Create(ctx, "Setting", db.Item{"deviceId": "dev-1", "name": "mode", "value": "eco"}, nil)
	require.NoError(t, err)
	setting, err := dev.Get(ctx, "Setting", db.Item{"deviceId": "dev-1", "name": "mode"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	r.dev.sync(time.Minute)
	// iotod sync also asks the cloud for a catch-up, which sends the
	// device's synced items back (a full resync: applying them changes
	// nothing); count what the device receives from here on.
	time.Sleep(time.Second)
	before := r.dev.metric("iotod_changes_in_total", `pipeline="apply"`)

	// In the table, as the device has them.
	check := func(model string, key db.Item, pk, sk string) {
		t.Helper()
		own, err := dev.Get(ctx, model, key, &db.Params{Hidden: true})
		require.NoError(t, err)
		got := r.get(pk, sk)
		require.NotNil(t, got, "%s %s|%s is not in the table", model, pk, sk)
		assert.Equal(t, model, got["_type"])
		assert.Equal(t, own[db.VersionAttr], got["_version"], "%s: the table has the device's version", sk)
		assert.True(t, strings.HasSuffix(fmt.Sprint(got["_version"]), ".dev-1"), "origin dev-1: %v", got["_version"])
		for k, v := range visible(own) {
			assert.Equal(t, fmt.Sprint(v), fmt.Sprint(got[k]), "%s: attribute %s in the table", sk, k)
		}
		// OneTable reads the same item, every field equal (the index keys
		// too: hidden, as the device's).
		ot := r.oneTableWith("get", model, key, map[string]any{"hidden": true})
		assert.Equal(t, normal(t, visible(own)), normal(t, visible(ot)), "%s: OneTable reads what the device wrote", sk)
	}
	for _, it := range written {
		check("Reading", db.Item{"deviceId": "dev-1", "id": it["id"]}, "reading#dev-1", fmt.Sprint("reading#", it["id"]))
	}
	check("Setting", db.Item{"deviceId": "dev-1", "name": "mode"}, "setting#dev-1", "setting#mode")

	// OneTable finds the device's Readings on the global index gs1, a
	// Query on the index: an item whose gs1pk or gs1sk is missing or wrong
	// is not found, or found out of place, and every field it returns (the
	// keys too) is what the device has.
	byNote := map[string]db.Item{} // the device's Readings with hidden attributes
	for _, it := range written {
		own, err := dev.Get(ctx, "Reading", db.Item{"deviceId": "dev-1", "id": it["id"]}, &db.Params{Hidden: true})
		require.NoError(t, err)
		note := fmt.Sprint(own["note"])
		byNote[note] = own
		assert.Equal(t, "device#dev-1", own["gs1pk"], "%s: gs1pk from its template", note)
		assert.Equal(t, fmt.Sprint("note#", note, "#", own["id"]), own["gs1sk"], "%s: gs1sk from its template", note)
		tbl := r.get("reading#dev-1", fmt.Sprint("reading#", own["id"]))
		assert.Equal(t, own["gs1pk"], tbl["gs1pk"], "%s: gs1pk in the table", note)
		assert.Equal(t, own["gs1sk"], tbl["gs1sk"], "%s: gs1sk in the table", note)
	}
	require.Len(t, byNote, 3)
	for _, tc := range []struct {
		name   string
		props  map[string]any
		params map[string]any
		want   []string // the notes found, in order
	}{
		{"the device's readings, by note", map[string]any{"deviceId": "dev-1"}, nil, []string{"n0", "n1", "n2"}},
		{"reverse", map[string]any{"deviceId": "dev-1"}, map[string]any{"reverse": true}, []string{"n2", "n1", "n0"}},
		{"one note (gs1sk begins with note#n1#)", map[string]any{"deviceId": "dev-1", "note": "n1"}, nil, []string{"n1"}},
		{"a gs1sk range", map[string]any{"deviceId": "dev-1", "gs1sk": map[string]any{"between": []string{"note#n1", "note#n2~"}}}, nil, []string{"n1", "n2"}},
		{"a note nobody wrote", map[string]any{"deviceId": "dev-1", "note": "n9"}, nil, []string{}},
		{"another device", map[string]any{"deviceId": "dev-2"}, nil, []string{}},
	} {
		t.Run("gs1/"+tc.name, func(t *testing.T) {
			params := map[string]any{"index": "gs1", "hidden": true}
			for k, v := range tc.params {
				params[k] = v
			}
			out := r.oneTableWith("find", "Reading", tc.props, params)
			found, ok := out["items"].([]any)
			require.True(t, ok, "OneTable's find: %v", out)
			notes := []string{}
			for _, f := range found {
				it, ok := f.(map[string]any)
				require.True(t, ok, "an item: %v", f)
				note := fmt.Sprint(it["note"])
				notes = append(notes, note)
				own := byNote[note]
				require.NotNil(t, own, "OneTable found a Reading the device did not write: %v", it)
				assert.Equal(t, normal(t, visible(own)), normal(t, visible(it)), "%s: OneTable's find on gs1 gives what the device wrote", note)
				assert.Equal(t, own["pk"], it["pk"], note)
				assert.Equal(t, own["sk"], it["sk"], note)
			}
			assert.Equal(t, tc.want, notes, "the Readings OneTable finds on gs1, in the index's order")
		})
	}

	// The cloud's writes: through the worker's API, and by OneTable.
	_, err = cloud.Create(ctx, "Command", db.Item{"deviceId": "dev-1", "id": "c-api", "command": "reboot"}, nil)
	require.NoError(t, err)
	ot := r.oneTable("create", "Command", map[string]any{"deviceId": "dev-1", "id": "c-onetable", "command": "set", "n": 7})
	require.Equal(t, "c-onetable", ot["id"])

	props := db.Item{"deviceId": "dev-1"}
	eventually(t, 30*time.Second, "both commands on the device", func() bool { return count(t, dev, "Command", props) == 2 })
	got := items(t, dev, "Command", props)
	api := got["command#dev-1|command#c-api"]
	require.NotNil(t, api)
	assert.Equal(t, "reboot", api["command"])
	assert.Equal(t, r.get("command#dev-1", "command#c-api")["_version"], api[db.VersionAttr], "the API's command at the table's version")
	assert.True(t, strings.HasSuffix(fmt.Sprint(api[db.VersionAttr]), ".cloud-1"))
	one := got["command#dev-1|command#c-onetable"]
	require.NotNil(t, one)
	assert.Equal(t, normal(t, visible(ot)), normal(t, visible(one)), "OneTable's command on the device, every field equal")
	assert.True(t, strings.HasSuffix(fmt.Sprint(one[db.VersionAttr]), ".cloud-1"), "a write outside iotod takes the worker's site: %v", one[db.VersionAttr])

	// No echo: from the table's stream the device received the two
	// commands only (not its own Readings or Setting back), and it sent its
	// four writes only.
	time.Sleep(time.Second) // anything echoed would have come by now
	assert.Equal(t, 2.0, r.dev.metric("iotod_changes_in_total", `pipeline="apply"`)-before, "changes the device received after the sync")
	assert.Equal(t, 4.0, r.dev.metric("iotod_changes_in_total", `pipeline="up"`), "changes the device sent up")
	s, err := dev.Get(ctx, "Setting", db.Item{"deviceId": "dev-1", "name": "mode"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	assert.Equal(t, setting[db.VersionAttr], s[db.VersionAttr], "the device's setting keeps its own version")
}

// TestDynamoDBWorkerKilledMidStream: the cloud writes Commands for the
// device straight into the table (PutItem, no version, rising updated
// times, each key twice) while the cloud worker is SIGKILLed and started
// again; the broker outlives it. Every item reaches the device at its last
// value, at the version its updated time gives (a record read again after
// the restart gets the same version: nothing applied twice with a
// different result), and the device sends nothing back up.
func TestDynamoDBWorkerKilledMidStream(t *testing.T) {
	r := newDynamoRig(t, separateBroker(), 1)
	ctx := context.Background()
	const keys = 30
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	want := map[string]int{}     // id -> last n
	wantAt := map[string]int64{} // id -> last updated, ms

	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 2 * keys { // each key twice: an insert, then a modify
			id := fmt.Sprintf("k%03d", i%keys)
			at := base.Add(time.Duration(i) * 10 * time.Millisecond)
			if err := r.putCommand(ctx, "dev-1", id, i, at); err != nil {
				werr = err
				return
			}
			want[id], wantAt[id] = i, at.UnixMilli()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(700 * time.Millisecond)
	r.workers[0].kill()
	time.Sleep(500 * time.Millisecond)
	r.workers[0].start()
	wg.Wait()
	require.NoError(t, werr)

	props := db.Item{"deviceId": "dev-1"}
	dev := r.dev.client()
	// The restarted worker takes the dead one's lease once it expired
	// (about 10 to 15 s).
	eventually(t, 90*time.Second, "every command at its last value on the device", func() bool {
		got := items(t, dev, "Command", props)
		if len(got) != keys {
			return false
		}
		for id, n := range want {
			if it := got["command#dev-1|command#"+id]; it == nil || fmt.Sprint(it["n"]) != fmt.Sprint(n) {
				return false
			}
		}
		return true
	})
	got := items(t, dev, "Command", props)
	for id, n := range want {
		it := got["command#dev-1|command#"+id]
		assert.Equal(t, fmt.Sprint(n), fmt.Sprint(it["n"]), id)
		assert.Equal(t, fmt.Sprintf("%016d.%08d.cloud-1", wantAt[id], 0), it[db.VersionAttr], "%s: the version its updated time gives", id)
		tbl := r.get("command#dev-1", "command#"+id)
		assert.Equal(t, fmt.Sprint(tbl["n"]), fmt.Sprint(it["n"]), "%s: the table's value", id)
	}
	assert.GreaterOrEqual(t, r.dev.metric("iotod_changes_in_total", `pipeline="apply"`), float64(keys), "changes the device received")
	assert.Equal(t, 0.0, r.dev.metric("iotod_changes_in_total", `pipeline="up"`), "the device sent nothing up: the cloud's commands are not echoed")
	assert.Equal(t, 2, leasesTaken(r.workers[0]), "the shard's lease taken by the first process and by the restarted one (the log of both)")
	t.Logf("the device received %v changes for %d writes", r.dev.metric("iotod_changes_in_total", `pipeline="apply"`), 2*keys)
}

// TestDynamoDBTwoWorkersShareTheStream: two workers (sites cloud-1 and
// cloud-2) on one table and one broker. Both write Commands through their
// APIs and the SDK writes more into the table; one worker holds the
// stream's shard; it is stopped halfway and the other takes the shard
// over. Every command reaches the device once in effect: the device's
// items equal the table's, at the table's versions.
func TestDynamoDBTwoWorkersShareTheStream(t *testing.T) {
	r := newDynamoRig(t, separateBroker(), 2)
	ctx := context.Background()
	dev := r.dev.client()
	props := db.Item{"deviceId": "dev-1"}
	eventually(t, 30*time.Second, "a worker holds the shard", func() bool { return leasesTaken(r.workers[0])+leasesTaken(r.workers[1]) > 0 })
	holder, other := r.workers[0], r.workers[1]
	if leasesTaken(other) > 0 {
		holder, other = other, holder
	}
	require.Equal(t, 1, leasesTaken(holder))
	require.Equal(t, 0, leasesTaken(other), "never two readers on the shard")
	t.Logf("%s holds the shard", holder.name)

	write := func(from, to int) {
		for i := from; i < to; i++ {
			id := fmt.Sprintf("c%02d", i)
			switch i % 3 {
			case 0, 1:
				w := r.workers[i%3]
				if !w.running() {
					w = other
				}
				_, err := w.client().Create(ctx, "Command", db.Item{"deviceId": "dev-1", "id": id, "command": "set", "n": i}, nil)
				require.NoError(t, err)
			default:
				require.NoError(t, r.putCommand(ctx, "dev-1", id, i, time.Now()))
			}
		}
	}
	write(0, 12)
	eventually(t, 30*time.Second, "the first commands on the device", func() bool { return count(t, dev, "Command", props) == 12 })
	holder.stop() // releases the lease
	write(12, 24)
	eventually(t, 60*time.Second, "every command on the device", func() bool { return count(t, dev, "Command", props) == 24 })
	assert.Equal(t, 1, leasesTaken(other), "%s took the shard over", other.name)

	// The device's items are the table's, at the table's versions.
	time.Sleep(500 * time.Millisecond)
	got := items(t, dev, "Command", props)
	sites := map[string]int{}
	for i := range 24 {
		id := fmt.Sprintf("c%02d", i)
		it := got["command#dev-1|command#"+id]
		require.NotNil(t, it, id)
		tbl := r.get("command#dev-1", "command#"+id)
		require.NotNil(t, tbl, id)
		assert.Equal(t, fmt.Sprint(i), fmt.Sprint(it["n"]), id)
		if v, ok := tbl["_version"]; ok { // written by a worker's API
			assert.Equal(t, v, it[db.VersionAttr], "%s: the device has the table's version", id)
		}
		for k, v := range visible(tbl) {
			assert.Equal(t, fmt.Sprint(v), fmt.Sprint(it[k]), "%s: attribute %s", id, k)
		}
		s := fmt.Sprint(it[db.VersionAttr])
		sites[s[strings.LastIndexByte(s, '.')+1:]]++
	}
	t.Logf("versions by origin: %v", sites)
	assert.Positive(t, sites["cloud-1"], "writes of cloud-1")
	assert.Positive(t, sites["cloud-2"], "writes of cloud-2")
	assert.Equal(t, 0.0, r.dev.metric("iotod_changes_in_total", `pipeline="up"`), "nothing echoed up")
}

// shardLease is a stream shard's lease, an item of the table (pk "~stream",
// sk "lease#<shard>"; plugins/storage/dynamodb/stream/lease.go).
type shardLease struct {
	shard, owner string
	ver, expires int64 // expires: epoch ms, the owner's clock
}

// leases reads the stream's shard leases from the table (consistently).
func (r *ddbRig) leases() []shardLease {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := r.client.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(r.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :lease)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: "~stream"}, ":lease": &types.AttributeValueMemberS{Value: "lease#"},
		},
	})
	require.NoError(r.t, err, "read the leases of %s", r.table)
	var ls []shardLease
	for _, it := range out.Items {
		p := plain(it)
		l := shardLease{shard: strings.TrimPrefix(fmt.Sprint(p["sk"]), "lease#"), owner: fmt.Sprint(p["owner"])}
		_, err1 := fmt.Sscan(fmt.Sprint(p["ver"]), &l.ver)
		_, err2 := fmt.Sscan(fmt.Sprint(p["expires"]), &l.expires)
		require.NoError(r.t, errors.Join(err1, err2), "lease item %v", p)
		ls = append(ls, l)
	}
	return ls
}

var leaseTakenRE = regexp.MustCompile(`msg="dynamodb stream shard lease taken".* owner=("[^"]*"|\S+)`)

// leaseOwnerIDs are the owner ids a worker's log says its stream source
// took leases as (one per process start).
func leaseOwnerIDs(n *node) []string {
	var ids []string
	for _, m := range leaseTakenRE.FindAllStringSubmatch(n.logText(), -1) {
		ids = append(ids, strings.Trim(m[1], `"`))
	}
	return ids
}

// workerOf is the rig's worker whose log names owner as its lease owner id
// (nil when none).
func (r *ddbRig) workerOf(owner string) *node {
	for _, w := range r.workers {
		if slices.Contains(leaseOwnerIDs(w), owner) {
			return w
		}
	}
	return nil
}

// TestDynamoDBLeaseHolderKilled: two workers (sites cloud-1 and cloud-2)
// on one table and the broker (mosquitto, else a process of its own); the
// worker holding the stream's shard leases (the lease items of the table
// name it) is SIGKILLed, so it releases nothing, while the cloud keeps
// writing Commands through the other worker's API and the SDK, new ones
// and updates of earlier ones. The other worker takes every lease once it
// expired, and every command reaches the device at its last value, the
// table's: a record sent twice (by the dead worker and again from the
// checkpoint by its successor) never leaves an older result, and the
// device sends nothing back up.
func TestDynamoDBLeaseHolderKilled(t *testing.T) {
	r := newDynamoRig(t, separateBroker(), 2)
	ctx := context.Background()
	dev := r.dev.client()
	props := db.Item{"deviceId": "dev-1"}

	// Who holds the leases: their owner, in the table, is in that worker's log.
	var held []shardLease
	eventually(t, 30*time.Second, "the stream's shard leases taken", func() bool {
		held = r.leases()
		for _, l := range held {
			if l.owner == "" || r.workerOf(l.owner) == nil {
				return false
			}
		}
		return len(held) > 0
	})
	holder := r.workerOf(held[0].owner)
	for _, l := range held {
		require.Same(t, holder, r.workerOf(l.owner), "one worker holds every shard: %v", held)
	}
	other := r.workers[0]
	if other == holder {
		other = r.workers[1]
	}
	require.Empty(t, leaseOwnerIDs(other), "%s took no lease: never two readers on a shard", other.name)
	t.Logf("%s holds %d shard lease(s) as %s", holder.name, len(held), held[0].owner)

	// write writes command id with n through w's API (create, or update
	// when it exists) or, w nil, with the SDK (a whole item, no version).
	want, writes := map[string]int{}, 0
	write := func(w *node, id string, n int) {
		t.Helper()
		writes++
		switch _, seen := want[id]; {
		case w == nil:
			require.NoError(t, r.putCommand(ctx, "dev-1", id, n, time.Now()))
		case seen:
			_, err := w.client().Update(ctx, "Command", db.Item{"deviceId": "dev-1", "id": id, "n": n}, nil)
			require.NoError(t, err, "update %s on %s", id, w.name)
		default:
			_, err := w.client().Create(ctx, "Command", db.Item{"deviceId": "dev-1", "id": id, "command": "set", "n": n}, nil)
			require.NoError(t, err, "create %s on %s", id, w.name)
		}
		want[id] = n
	}
	writers := []*node{holder, other, nil}
	for i := range 9 {
		write(writers[i%3], fmt.Sprintf("c%02d", i), i)
	}
	eventually(t, 30*time.Second, "the first commands on the device", func() bool { return count(t, dev, "Command", props) == 9 })

	holder.kill()
	killed := time.Now()
	// The cloud keeps writing, through the other worker and the SDK, new
	// commands and updates of the first ones, until the other worker holds
	// every lease and for a while after.
	var taken time.Time
	ownsAll := func() bool {
		owner := ""
		if ids := leaseOwnerIDs(other); len(ids) > 0 {
			owner = ids[len(ids)-1]
		}
		ls := r.leases()
		for _, l := range ls {
			if owner == "" || l.owner != owner || l.expires <= time.Now().UnixMilli() {
				return false
			}
		}
		return len(ls) > 0
	}
	for i := 9; taken.IsZero() || time.Since(taken) < 2*time.Second; i++ {
		require.Less(t, time.Since(killed), 45*time.Second, "%s did not take the leases of the killed %s: %v", other.name, holder.name, r.leases())
		if i%2 == 0 {
			write(other, fmt.Sprintf("c%02d", i), i)
		} else {
			write(nil, fmt.Sprintf("c%02d", i), i)
		}
		if old := fmt.Sprintf("c%02d", i%9); i%3 == 0 { // an update of a command the killed worker sent
			write(writers[(i/3)%2+1], old, 100+i)
		}
		if taken.IsZero() && ownsAll() {
			taken = time.Now()
			t.Logf("%s holds every lease %.1fs after the kill", other.name, taken.Sub(killed).Seconds())
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, l := range r.leases() {
		assert.Greater(t, l.ver, held[0].ver, "shard %s: the lease was taken again", l.shard)
	}
	assert.Len(t, leaseOwnerIDs(other), 1, "%s took the leases once", other.name)

	eventually(t, 30*time.Second, "every command at its last value on the device", func() bool {
		got := items(t, dev, "Command", props)
		if len(got) != len(want) {
			return false
		}
		for id, n := range want {
			if it := got["command#dev-1|command#"+id]; it == nil || fmt.Sprint(it["n"]) != fmt.Sprint(n) {
				return false
			}
		}
		return true
	})
	// Settled: what the device has is the table's, field by field, at the
	// table's version (at the version its updated time gives for the SDK's).
	time.Sleep(500 * time.Millisecond) // a late, stale replay would have come by now
	got := items(t, dev, "Command", props)
	require.Len(t, got, len(want))
	origins := map[string]int{}
	for id, n := range want {
		it := got["command#dev-1|command#"+id]
		require.NotNil(t, it, id)
		tbl := r.get("command#dev-1", "command#"+id)
		require.NotNil(t, tbl, id)
		assert.Equal(t, fmt.Sprint(n), fmt.Sprint(it["n"]), "%s: the last value", id)
		for k, v := range visible(tbl) {
			assert.Equal(t, fmt.Sprint(v), fmt.Sprint(it[k]), "%s: attribute %s", id, k)
		}
		v := fmt.Sprint(it[db.VersionAttr])
		if tv, ok := tbl["_version"]; ok {
			assert.Equal(t, tv, v, "%s: the device has the table's version", id)
		} else {
			at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(tbl["updated"]))
			require.NoError(t, err, id)
			assert.True(t, strings.HasPrefix(v, fmt.Sprintf("%016d.%08d.cloud-", at.UnixMilli(), 0)), "%s: the version its updated time gives: %s", id, v)
		}
		origins[v[strings.LastIndexByte(v, '.')+1:]]++
	}
	t.Logf("%d commands, %d writes; versions by origin: %v; the device received %v changes", len(want), writes,
		origins, r.dev.metric("iotod_changes_in_total", `pipeline="apply"`))
	assert.Equal(t, 0.0, r.dev.metric("iotod_changes_in_total", `pipeline="up"`), "nothing echoed up")
}

// TestQuickstartDynamoDB runs the bash blocks of the quick start's section
// "The cloud side on DynamoDB" (TestQuickstart runs only its sh blocks) in
// a copy of the repository's config files, on free ports and a fresh
// table, against the DynamoDB Local of IOTOD_DYNAMODB_URL (its start and
// stop lines are skipped: the tests' services run). `export` lines set the
// environment of the lines after them; `iotod run` starts in the
// background. The lines shown after a block must come out in order; a
// block that only reads is run again until they do (replication takes a
// moment).
func TestQuickstartDynamoDB(t *testing.T) {
	iotodBin(t) // skips under -short
	url := dynamotest.URL(t)
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("the quick start's DynamoDB section uses the AWS CLI: %v", err)
	}
	steps := quickstartBashSteps(t, "The cloud side on DynamoDB")
	require.GreaterOrEqual(t, len(steps), 6, "bash blocks in the section")

	table := dynamotest.UniqueName("iotod-quickstart")
	c := dynamotest.Client(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	ran := runQuickstartSection(t, steps, map[string]string{"IOTOD_DYNAMODB_URL": url, "IOTOD_DYNAMODB_TABLE": table}, "aws dynamodb scan")
	require.GreaterOrEqual(t, ran, 5, "commands run")
	// The device's Status is in the quick start's table, written by the worker.
	out, err := c.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table)})
	require.NoError(t, err)
	found := false
	for _, it := range out.Items {
		p := plain(it)
		found = found || p["_type"] == "Status" && p["temp"] == "22.5" && strings.HasSuffix(fmt.Sprint(p["_version"]), ".demo-device")
	}
	assert.True(t, found, "the device's Status in table %s", table)
}

// parseBashSteps reads the bash blocks of a markdown text, each with the
// text or json block right after it as its output.
func parseBashSteps(md string) []step { return stepsOf(md, "bash", nil) }
