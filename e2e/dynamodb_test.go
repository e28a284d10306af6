package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	addr    string // the broker
	mosq    *mosquitto
	workers []*node
	dev     *node
	sites   []string
}

// newDynamoRig starts the broker (embedded in worker 1 for inCloud), the
// workers on a fresh table (created by worker 1's create_table, deleted at
// the end) and the device dev-1.
func newDynamoRig(t *testing.T, kind brokerKind, workers int) *ddbRig {
	t.Helper()
	iotodBin(t) // skips under -short before anything starts
	r := &ddbRig{t: t, url: dynamotest.URL(t), table: dynamotest.UniqueName("iotod-e2e"), sites: []string{"dev-1"}}
	c := dynamotest.Client(t)
	t.Cleanup(func() { // registered first: runs after the processes are gone
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(r.table)})
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
	r.dev = startNode(t, "dev-1", deviceConfig(t, "dev-1", r.addr))
	return r
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
	fmt.Fprintf(&b, "site: cloud\nschema: %s\n", schemaPath(r.t))
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
	out, err := dynamotest.Client(r.t).GetItem(ctx, &dynamodb.GetItemInput{
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
	_, err := dynamotest.Client(r.t).PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(r.table), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "command#" + device}, "sk": &types.AttributeValueMemberS{Value: "command#" + id},
		"_type":    &types.AttributeValueMemberS{Value: "Command"},
		"deviceId": &types.AttributeValueMemberS{Value: device}, "id": &types.AttributeValueMemberS{Value: id},
		"command": &types.AttributeValueMemberS{Value: "set"}, "n": &types.AttributeValueMemberN{Value: fmt.Sprint(n)},
		"created": &types.AttributeValueMemberS{Value: at}, "updated": &types.AttributeValueMemberS{Value: at},
	}})
	return err
}

// oneTable runs a OneTable request on the rig's table with e2e's schema.
func (r *ddbRig) oneTable(op, model string, props map[string]any) map[string]any {
	r.t.Helper()
	doc, err := onetable.LoadSchema(schemaPath(r.t))
	require.NoError(r.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := onetable.Run(ctx, onetable.Request{Endpoint: r.url, Region: dynamotest.Region, Table: r.table, Schema: doc,
		Op: op, Model: model, Properties: props})
	require.NoError(r.t, err, "onetable %s %s %v", op, model, props)
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
// back by OneTable with every field equal; a Command the worker's API
// writes and one OneTable writes straight into the table reach the
// device; nothing the device wrote comes back to it, and the device sends
// nothing of the cloud's up.
func TestDynamoDBBothWays(t *testing.T) {
	r := newDynamoRig(t, inCloud, 1)
	ctx := context.Background()
	dev, cloud := r.dev.client(), r.workers[0].client()

	var written []db.Item
	for i := range 3 {
		it, err := dev.Create(ctx, "Reading", db.Item{"deviceId": "dev-1", "value": 20.5 + float64(i), "note": fmt.Sprintf("n%d", i)}, nil)
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
		// OneTable reads the same item, every field equal.
		ot := r.oneTable("get", model, key)
		assert.Equal(t, normal(t, visible(own)), normal(t, visible(ot)), "%s: OneTable reads what the device wrote", sk)
	}
	for _, it := range written {
		check("Reading", db.Item{"deviceId": "dev-1", "id": it["id"]}, "reading#dev-1", fmt.Sprint("reading#", it["id"]))
	}
	check("Setting", db.Item{"deviceId": "dev-1", "name": "mode"}, "setting#dev-1", "setting#mode")

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
	bin := iotodBin(t)
	url := dynamotest.URL(t)
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("the quick start's DynamoDB section uses the AWS CLI: %v", err)
	}
	text, err := os.ReadFile("../docs/quickstart.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(text), "\n## The cloud side on DynamoDB\n")
	require.True(t, ok, "docs/quickstart.md has no section \"The cloud side on DynamoDB\"")
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	steps := parseBashSteps(section)
	require.GreaterOrEqual(t, len(steps), 6, "bash blocks in the section")

	table := dynamotest.UniqueName("iotod-quickstart")
	c := dynamotest.Client(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	dir := quickstartDir(t)
	vars := map[string]string{
		"IOTOD_BROKER": freeAddr(t), "IOTOD_API": freeAddr(t), "IOTOD_CLOUD_API": freeAddr(t),
		"IOTOD_DYNAMODB_URL": url, "IOTOD_DYNAMODB_TABLE": table,
		"PATH": filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	env := func() []string {
		var out []string
		for k, v := range vars {
			out = append(out, k+"="+v)
		}
		return out
	}
	lookup := func(name string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		return os.Getenv(name)
	}
	ran := 0
	for i, s := range steps {
		run := func() string {
			var out strings.Builder
			for _, line := range s.commands {
				line = goRun.ReplaceAllString(line, "iotod ")
				switch {
				case strings.HasPrefix(line, "bash scripts/services.sh "), strings.HasPrefix(line, "export $("):
					continue // the tests' services are running
				case strings.HasPrefix(line, "export "):
					for _, kv := range strings.Fields(strings.TrimPrefix(line, "export ")) {
						k, v, ok := strings.Cut(kv, "=")
						require.True(t, ok, "export %q", kv)
						vars[k] = os.Expand(v, lookup)
					}
				case strings.HasPrefix(line, "iotod run"):
					args := strings.Fields(strings.TrimPrefix(line, "iotod "))
					n := startIn(t, fmt.Sprintf("server-%d", i+1), dir, args, env()...)
					out.WriteString(n.logText())
				default:
					out.WriteString(runLine(t, dir, env(), line))
					ran++
				}
			}
			return out.String()
		}
		readOnly := true
		for _, line := range s.commands {
			readOnly = readOnly && (strings.HasPrefix(line, "iotod db find") || strings.HasPrefix(line, "aws dynamodb scan"))
		}
		out := run()
		for deadline := time.Now().Add(30 * time.Second); readOnly && !linesIn(s.want, out) && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			out = run()
		}
		requireLines(t, i+1, s.want, out)
	}
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
