package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotod/iotod/internal/dynamotest"
	"github.com/iotod/iotod/pipeline"
)

// counter is a record holding n, versioned by n so every write differs.
func counter(key pipeline.Key, n int) *pipeline.Record {
	return &pipeline.Record{Key: key, Model: "Counter", Item: fmt.Appendf(nil, `{"n":%d}`, n),
		Version: pipeline.Version{Wall: int64(1000 + n), Origin: "test"}}
}

func counterValue(t *testing.T, rec *pipeline.Record) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(string(rec.Item), `{"n":%d}`, &n); err != nil {
		t.Fatalf("counter item %s: %v", rec.Item, err)
	}
	return n
}

func getRecord(t *testing.T, s pipeline.Store, key pipeline.Key) (*pipeline.Record, error) {
	t.Helper()
	var rec *pipeline.Record
	err := s.View(t.Context(), func(tx pipeline.ReadTx) error {
		var err error
		rec, err = tx.Get(t.Context(), key)
		return err
	})
	return rec, err
}

func put(t *testing.T, s pipeline.Store, recs ...*pipeline.Record) {
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

// increment reads the counter at key and writes it plus one.
func increment(ctx context.Context, tx pipeline.Tx, key pipeline.Key) error {
	rec, err := tx.Get(ctx, key)
	n := 0
	switch {
	case errors.Is(err, pipeline.ErrNotFound):
	case err != nil:
		return err
	default:
		if _, err := fmt.Sscanf(string(rec.Item), `{"n":%d}`, &n); err != nil {
			return err
		}
	}
	return tx.Put(ctx, counter(key, n+1))
}

// TestConflictRunsAgain: an Update whose read was overtaken by another
// writer's commit runs its function again and builds on that write.
func TestConflictRunsAgain(t *testing.T) {
	cfg := testConfig(t)
	a, b := openStore(t, cfg), openStore(t, cfg)
	ctx := t.Context()
	key := pipeline.Key{PK: "counter", SK: "1"}
	put(t, a, counter(key, 1))

	read, committed := make(chan struct{}), make(chan error, 1)
	go func() {
		<-read
		committed <- b.Update(ctx, func(tx pipeline.Tx) error { return increment(ctx, tx, key) })
	}()
	var runs atomic.Int32
	err := a.Update(ctx, func(tx pipeline.Tx) error {
		if runs.Add(1) == 1 {
			if _, err := tx.Get(ctx, key); err != nil {
				return err
			}
			close(read) // the other writer commits between our read and commit
			if err := <-committed; err != nil {
				return fmt.Errorf("other writer: %w", err)
			}
		}
		return increment(ctx, tx, key)
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if runs.Load() != 2 || a.conflicts.Load() != 1 {
		t.Fatalf("update ran %d times with %d conflicts, want 2 and 1", runs.Load(), a.conflicts.Load())
	}
	rec, err := getRecord(t, a, key)
	if err != nil {
		t.Fatal(err)
	}
	if n := counterValue(t, rec); n != 3 {
		t.Fatalf("counter %d after two increments of 1, want 3 (a lost update)", n)
	}
}

// TestConcurrentIncrements: concurrent read-modify-write Updates from
// several clients lose no increment.
func TestConcurrentIncrements(t *testing.T) {
	cfg := testConfig(t)
	cfg.ConflictRetries = 100
	ctx := t.Context()
	key := pipeline.Key{PK: "counter", SK: "many"}
	const writers, each = 6, 5
	stores := make([]*Store, writers)
	for i := range stores {
		stores[i] = openStore(t, cfg)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for _, s := range stores {
		wg.Go(func() {
			for range each {
				if err := s.Update(ctx, func(tx pipeline.Tx) error { return increment(ctx, tx, key) }); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rec, err := getRecord(t, stores[0], key)
	if err != nil {
		t.Fatal(err)
	}
	var conflicts int64
	for _, s := range stores {
		conflicts += s.conflicts.Load()
	}
	if n := counterValue(t, rec); n != writers*each {
		t.Fatalf("counter %d after %d increments (%d conflicts)", n, writers*each, conflicts)
	}
	t.Logf("%d increments, %d conflicts retried", writers*each, conflicts)
}

// TestConflictGivesUp: an Update that conflicts on every run gives up after
// conflict_retries with ErrConditionFailed, naming the table and the key,
// and writes nothing of a multi-item transaction.
func TestConflictGivesUp(t *testing.T) {
	cfg := testConfig(t)
	cfg.ConflictRetries = 2
	a, b := openStore(t, cfg), openStore(t, cfg)
	ctx := t.Context()
	key := pipeline.Key{PK: "contended", SK: "1"}
	put(t, a, counter(key, 1))
	runs := 0
	err := a.Update(ctx, func(tx pipeline.Tx) error {
		runs++
		if err := increment(ctx, tx, key); err != nil {
			return err
		}
		for i := range 3 {
			if err := tx.Put(ctx, counter(pipeline.Key{PK: "bystander", SK: fmt.Sprint(i)}, runs)); err != nil {
				return err
			}
		}
		// Another writer changes the item after every read.
		return b.Update(ctx, func(tx pipeline.Tx) error { return tx.Put(ctx, counter(key, 100+runs)) })
	})
	if !errors.Is(err, pipeline.ErrConditionFailed) || !strings.Contains(err.Error(), cfg.Table) || !strings.Contains(err.Error(), key.String()) {
		t.Fatalf("update: got %v, want ErrConditionFailed naming the table and %s", err, key)
	}
	if runs != 3 {
		t.Fatalf("the update ran %d times, want 3 (conflict_retries 2)", runs)
	}
	for i := range 3 {
		k := pipeline.Key{PK: "bystander", SK: fmt.Sprint(i)}
		if _, err := getRecord(t, a, k); !errors.Is(err, pipeline.ErrNotFound) {
			t.Fatalf("%s written by a transaction that failed its condition: %v", k, err)
		}
	}
	rec, err := getRecord(t, a, key)
	if err != nil || counterValue(t, rec) != 103 {
		t.Fatalf("contended item %v, %v; want the other writer's last value 103", rec, err)
	}
}

// TestCreateOnlyIfAbsent: a Get that found nothing conditions the write on
// the key still being absent.
func TestCreateOnlyIfAbsent(t *testing.T) {
	cfg := testConfig(t)
	cfg.ConflictRetries = 0
	a, b := openStore(t, cfg), openStore(t, cfg)
	ctx := t.Context()
	key := pipeline.Key{PK: "new", SK: "1"}
	err := a.Update(ctx, func(tx pipeline.Tx) error {
		if _, err := tx.Get(ctx, key); !errors.Is(err, pipeline.ErrNotFound) {
			return fmt.Errorf("get: %v", err)
		}
		put(t, b, counter(key, 7))
		return tx.Put(ctx, counter(key, 1))
	})
	if !errors.Is(err, pipeline.ErrConditionFailed) {
		t.Fatalf("create over a concurrent create: got %v, want ErrConditionFailed", err)
	}
	if rec, err := getRecord(t, a, key); err != nil || counterValue(t, rec) != 7 {
		t.Fatalf("item %v, %v; want the other writer's 7", rec, err)
	}
}

// TestWriteOverExpired: an expired item is not found, yet a write over it
// succeeds (the condition is on the item as it is, not as it looked).
func TestWriteOverExpired(t *testing.T) {
	s := openStore(t, testConfig(t))
	ctx := t.Context()
	key := pipeline.Key{PK: "ttl", SK: "1"}
	old := counter(key, 1)
	old.Expires = time.Now().Add(-time.Minute).UnixMilli()
	put(t, s, old)
	raw, err := rawClient(t).GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.cfg.Table), Key: s.l.keyAttrs(key)})
	if err != nil || len(raw.Item) == 0 {
		t.Fatalf("the expired item is not in the table (DynamoDB deletes lazily): %v", err)
	}
	err = s.Update(ctx, func(tx pipeline.Tx) error { return increment(ctx, tx, key) })
	if err != nil {
		t.Fatalf("write over an expired item: %v", err)
	}
	if rec, err := getRecord(t, s, key); err != nil || counterValue(t, rec) != 1 {
		t.Fatalf("item %v, %v; want a new counter at 1", rec, err)
	}
}

// TestMissingTable: without create_table, a missing table is a permanent
// error naming the table and what to do.
func TestMissingTable(t *testing.T) {
	cfg := testConfig(t)
	cfg.CreateTable = false
	_, err := Open(t.Context(), cfg, testSchema(t), testLogger(t))
	if err == nil {
		t.Fatal("opened a missing table")
	}
	for _, want := range []string{cfg.Table, "not found", "create_table: true", cfg.Endpoint} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !pipeline.IsPermanent(err) {
		t.Errorf("missing table error is retryable: %v", err)
	}
}

// TestTableNotFittingSchema: a table without an index the schema declares
// is refused at open, naming the index.
func TestTableNotFittingSchema(t *testing.T) {
	c := rawClient(t)
	table := dynamotest.Table(t, c, "iotod-unfit", dynamotest.GSI{Name: "gs1", Hash: "gs1pk", Sort: "gs1sk"})
	cfg := testConfig(t)
	cfg.Table, cfg.CreateTable = table, false
	_, err := Open(t.Context(), cfg, testSchema(t), testLogger(t))
	if !errors.Is(err, pipeline.ErrInvalid) || !strings.Contains(err.Error(), `index "gs2" (hash gs2pk, sort gs2sk) is missing`) ||
		!strings.Contains(err.Error(), table) {
		t.Fatalf("open of a table without gs2: got %v", err)
	}
}

// TestCredentials: DynamoDB Local takes any well-formed key (with
// -sharedDb every key sees the same tables), so what can be checked here
// is a key it refuses (characters outside A-Z a-z 0-9), which must be a
// permanent error saying the credentials were refused, and an empty
// default chain, which must say there are none. Real AWS also refuses
// unknown keys and bad signatures; those take the same path (the error
// codes are listed in opError).
func TestCredentials(t *testing.T) {
	cfg := testConfig(t)
	s := openStore(t, cfg) // creates the table
	_ = s
	bad := cfg
	bad.AccessKeyID, bad.SecretAccessKey = "not-a-key!", "secret"
	_, err := Open(t.Context(), bad, testSchema(t), testLogger(t))
	if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "credentials were refused") ||
		!strings.Contains(err.Error(), "UnrecognizedClientException") || !strings.Contains(err.Error(), cfg.Table) {
		t.Fatalf("open with a refused key: got %v, want a permanent error naming the table and the refused credentials", err)
	}

	// No credentials anywhere in the default chain.
	none := cfg
	none.AccessKeyID, none.SecretAccessKey = "", ""
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": dir + "/config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "",
	} {
		t.Setenv(k, v)
	}
	_, err = Open(t.Context(), none, testSchema(t), testLogger(t))
	if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "no AWS credentials") {
		t.Fatalf("open without credentials: got %v, want a permanent 'no AWS credentials' error", err)
	}
}

// faultAPI injects errors into the calls of a real client.
type faultAPI struct {
	API
	mu sync.Mutex
	// fail returns the error to inject into the named call, or nil.
	fail  func(op string, n int) error
	calls map[string]int
	at    []time.Time
}

func (f *faultAPI) inject(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	f.at = append(f.at, time.Now())
	return f.fail(op, f.calls[op])
}

func (f *faultAPI) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *faultAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := f.inject("PutItem"); err != nil {
		return nil, err
	}
	return f.API.PutItem(ctx, in, o...)
}

func (f *faultAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if err := f.inject("GetItem"); err != nil {
		return nil, err
	}
	return f.API.GetItem(ctx, in, o...)
}

func (f *faultAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := f.inject("TransactWriteItems"); err != nil {
		return nil, err
	}
	return f.API.TransactWriteItems(ctx, in, o...)
}

func (f *faultAPI) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if err := f.inject("Query"); err != nil {
		return nil, err
	}
	return f.API.Query(ctx, in, o...)
}

// BatchGetItem leaves all but the first key unprocessed while fail says
// so (an error "unprocessed"), as DynamoDB does under load.
func (f *faultAPI) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	err := f.inject("BatchGetItem")
	if err != nil && err.Error() != "unprocessed" {
		return nil, err
	}
	if err == nil {
		return f.API.BatchGetItem(ctx, in, o...)
	}
	partial := map[string]types.KeysAndAttributes{}
	left := map[string]types.KeysAndAttributes{}
	for table, ka := range in.RequestItems {
		first := ka
		first.Keys = ka.Keys[:1]
		partial[table] = first
		if len(ka.Keys) > 1 {
			rest := ka
			rest.Keys = ka.Keys[1:]
			left[table] = rest
		}
	}
	out, err := f.API.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: partial}, o...)
	if err != nil {
		return nil, err
	}
	out.UnprocessedKeys = left
	return out, nil
}

func throttled() error {
	return &types.ProvisionedThroughputExceededException{Message: aws.String("injected: rate of requests exceeds the allowed throughput")}
}

// TestThrottlingRetried: throttled calls are retried with backoff until
// they pass; a call throttled past max_attempts fails with a retryable
// error naming the table and the key.
func TestThrottlingRetried(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxAttempts = 6
	cfg.RetryDelay, cfg.MaxRetryDelay = 10*time.Millisecond, 40*time.Millisecond
	var budget atomic.Int32 // calls to throttle
	f := &faultAPI{fail: func(op string, n int) error {
		if op != "DescribeTable" && budget.Add(-1) >= 0 {
			return throttled()
		}
		return nil
	}}
	s := openStore(t, cfg, WithAPI(func(a API) API { f.API = a; return f }))
	ctx := t.Context()
	key := pipeline.Key{PK: "throttled", SK: "1"}

	budget.Store(4)
	start := time.Now()
	put(t, s, counter(key, 1))
	if n := f.count("PutItem"); n != 5 {
		t.Fatalf("put made %d attempts, want 5 (4 throttled)", n)
	}
	// Backoff: four pauses of up to 10, 20, 40, 40 ms with full jitter.
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("put with 4 throttled attempts took %s", d)
	}
	if got := s.retries.Load(); got != 4 {
		t.Fatalf("%d backoffs, want 4", got)
	}

	budget.Store(4)
	if rec, err := getRecord(t, s, key); err != nil || counterValue(t, rec) != 1 {
		t.Fatalf("get through throttling: %v, %v", rec, err)
	}

	// A transaction throttled by DynamoDB comes back cancelled with a
	// ThrottlingError reason: retried as well.
	f.fail = func(op string, n int) error {
		if op == "TransactWriteItems" && n <= 2 {
			return &types.TransactionCanceledException{Message: aws.String("injected"),
				CancellationReasons: []types.CancellationReason{{Code: aws.String("ThrottlingError")}, {Code: aws.String("None")}}}
		}
		return nil
	}
	put(t, s, counter(pipeline.Key{PK: "tx", SK: "1"}, 1), counter(pipeline.Key{PK: "tx", SK: "2"}, 1))
	if n := f.count("TransactWriteItems"); n != 3 {
		t.Fatalf("transaction made %d attempts, want 3", n)
	}

	// Throttled for good: the call gives up after max_attempts with a
	// retryable error.
	f.fail = func(op string, n int) error {
		if op == "PutItem" {
			return throttled()
		}
		return nil
	}
	before := f.count("PutItem")
	err := s.Update(ctx, func(tx pipeline.Tx) error { return tx.Put(ctx, counter(key, 2)) })
	if err == nil {
		t.Fatal("put throttled for good succeeded")
	}
	var pte *types.ProvisionedThroughputExceededException
	if pipeline.IsPermanent(err) || !errors.As(err, &pte) || !strings.Contains(err.Error(), "gave up after 6 attempts") ||
		!strings.Contains(err.Error(), cfg.Table) || !strings.Contains(err.Error(), key.String()) {
		t.Fatalf("put throttled for good: got %v, want a retryable error after 6 attempts naming the table and key", err)
	}
	if n := f.count("PutItem") - before; n != 6 {
		t.Fatalf("%d attempts, want 6", n)
	}
	// A cancelled context ends the backoff at once.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	slow := cfg
	slow.RetryDelay, slow.MaxRetryDelay, slow.MaxAttempts = time.Second, 5*time.Second, 10
	s2 := openStore(t, slow, WithAPI(func(a API) API { f.API = a; return f }))
	start = time.Now()
	err = s2.Update(cctx, func(tx pipeline.Tx) error { return tx.Put(cctx, counter(key, 2)) })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("throttled put with a 30ms deadline: %v after %s", err, time.Since(start))
	}
}

// TestUnprocessedKeysRetried: reading a keys-only index fetches the items
// with BatchGetItem; keys DynamoDB leaves unprocessed are asked again.
func TestUnprocessedKeysRetried(t *testing.T) {
	cfg := testConfig(t)
	f := &faultAPI{fail: func(op string, n int) error {
		if op == "BatchGetItem" && n <= 3 {
			return errors.New("unprocessed")
		}
		return nil
	}}
	sch := parseSchema(t, `{format: 'onetable:1.1.0', version: '0.0.1',
		indexes: {primary: {hash: 'pk', sort: 'sk'}, gs1: {hash: 'gs1pk', sort: 'gs1sk', project: 'keys'}},
		models: {Thing: {pk: {type: 'string'}, sk: {type: 'string'}, gs1pk: {type: 'string'}, gs1sk: {type: 'string'}, name: {type: 'string'}}}}`)
	s, err := Open(t.Context(), cfg, sch, testLogger(t), WithAPI(func(a API) API { f.API = a; return f }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	var recs []*pipeline.Record
	for i := range 5 {
		r := &pipeline.Record{Key: pipeline.Key{PK: fmt.Sprintf("thing#%d", i), SK: "thing"}, Model: "Thing",
			Item:    fmt.Appendf(nil, `{"name":"n%d","payload":"only in the item"}`, i),
			Indexes: []pipeline.IndexEntry{{Index: "gs1", Hash: "all", Sort: fmt.Sprintf("%02d", 4-i)}}}
		recs = append(recs, r)
	}
	put(t, s, recs...)
	var got []string
	err = s.View(t.Context(), func(tx pipeline.ReadTx) error {
		return tx.Scan(t.Context(), pipeline.Query{Index: "gs1", Hash: "all"}, func(rec *pipeline.Record, pos pipeline.Position) (bool, error) {
			if !strings.Contains(string(rec.Item), "only in the item") {
				return false, fmt.Errorf("record %s without its item's attributes: %s", rec.Key, rec.Item)
			}
			got = append(got, rec.Key.PK)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "thing#4 thing#3 thing#2 thing#1 thing#0"; strings.Join(got, " ") != want {
		t.Fatalf("keys-only index walk: %q, want %q", got, want)
	}
	if n := f.count("BatchGetItem"); n != 4 {
		t.Fatalf("%d BatchGetItem calls, want 4 (one key in each of 3 partial answers, then the last 2)", n)
	}
}

// TestItemLayout: what the store writes is a OneTable item: the record's
// item attributes with their DynamoDB types, nothing added for items that
// hold their keys; tombstones and meta records as docs/dynamodb.md says.
func TestItemLayout(t *testing.T) {
	s := openStore(t, testConfig(t))
	ctx := t.Context()
	c := rawClient(t)
	raw := func(k pipeline.Key) map[string]types.AttributeValue {
		t.Helper()
		out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.cfg.Table), Key: s.l.keyAttrs(k), ConsistentRead: aws.Bool(true)})
		if err != nil || len(out.Item) == 0 {
			t.Fatalf("raw get %s: %v", k, err)
		}
		return out.Item
	}
	status := statusRecord()
	status.Expires = time.Now().Add(time.Hour).Unix() * 1000
	status.Item = []byte(strings.Replace(statusItem, "1732544834", fmt.Sprint(status.Expires/1000), 1))
	status.Item = []byte(strings.Replace(string(status.Item), `"created"`, `"big":12345678901234567890123456789012345678,"created"`, 1))
	status.Item = []byte(strings.Replace(string(status.Item), `"pk"`, `"list":[1,"a",{"m":null}],"pk"`, 1))
	tomb := &pipeline.Record{Key: pipeline.Key{PK: "status#gone", SK: "status#"}, Model: "~tombstone",
		Item: []byte(`{"model":"Status","owner":"dev-1"}`), Version: v1, Expires: status.Expires}
	meta := &pipeline.Record{Key: pipeline.Key{PK: "~meta", SK: "cursor"}, Model: "~meta", Item: []byte("0001732541234567.00000003.cloud")}
	put(t, s, status, tomb, meta)

	item := raw(status.Key)
	want := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "status#01J"}, "sk": &types.AttributeValueMemberS{Value: "status#"},
		"_type": &types.AttributeValueMemberS{Value: "Status"}, "_version": &types.AttributeValueMemberS{Value: v1.String()},
		"gs1pk": &types.AttributeValueMemberS{Value: "device#dev-1"}, "temp": &types.AttributeValueMemberN{Value: "21.5"},
		"big":     &types.AttributeValueMemberN{Value: "12345678901234567890123456789012345678"},
		"expires": &types.AttributeValueMemberN{Value: fmt.Sprint(status.Expires / 1000)},
		"list": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"},
			&types.AttributeValueMemberS{Value: "a"}, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"m": &types.AttributeValueMemberNULL{Value: true}}}}},
	}
	for name, w := range want {
		if !reflect.DeepEqual(item[name], w) {
			t.Errorf("attribute %s = %#v, want %#v", name, item[name], w)
		}
	}
	if _, ok := item[addedAttr]; ok || len(item) != 14 {
		t.Errorf("item has %d attributes (%s present: %v), want the item's 14 only", len(item), addedAttr, ok)
	}
	got, err := getRecord(t, s, status.Key)
	if err != nil || string(got.Item) != string(status.Item) || got.Version != v1 || got.Expires != status.Expires {
		t.Fatalf("read back: %+v (item %s), %v", got, got.Item, err)
	}

	ti := raw(tomb.Key)
	if ti["_type"].(*types.AttributeValueMemberS).Value != "~tombstone" || ti["model"].(*types.AttributeValueMemberS).Value != "Status" ||
		ti["owner"].(*types.AttributeValueMemberS).Value != "dev-1" || ti["expires"].(*types.AttributeValueMemberN).Value != fmt.Sprint(tomb.Expires/1000) {
		t.Errorf("tombstone attributes %#v", ti)
	}
	if _, ok := ti["gs1pk"]; ok {
		t.Error("tombstone in an index")
	}
	mi := raw(meta.Key)
	if mi["_type"].(*types.AttributeValueMemberS).Value != "~meta" || mi["_value"].(*types.AttributeValueMemberS).Value != string(meta.Item) {
		t.Errorf("meta attributes %#v", mi)
	}
	for _, r := range []*pipeline.Record{tomb, meta} {
		if got, err := getRecord(t, s, r.Key); err != nil || string(got.Item) != string(r.Item) || got.Model != r.Model {
			t.Errorf("read back %s: %+v, %v", r.Key, got, err)
		}
	}

	// An item put by another client (OneTable, the SDK): no _version.
	other := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "status#02"}, "sk": &types.AttributeValueMemberS{Value: "status#"},
		"_type": &types.AttributeValueMemberS{Value: "Status"}, "gs1pk": &types.AttributeValueMemberS{Value: "device#dev-1"},
		"gs1sk": &types.AttributeValueMemberS{Value: "status#02"}, "temp": &types.AttributeValueMemberN{Value: "1.50"},
		"updated": &types.AttributeValueMemberS{Value: "2024-11-25T13:27:14.567Z"},
	}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.cfg.Table), Item: other}); err != nil {
		t.Fatal(err)
	}
	got, err = getRecord(t, s, pipeline.Key{PK: "status#02", SK: "status#"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Model != "Status" || !got.Version.IsZero() || len(got.Indexes) != 1 || got.Indexes[0].Sort != "status#02" ||
		string(got.Item) != `{"_type":"Status","gs1pk":"device#dev-1","gs1sk":"status#02","pk":"status#02","sk":"status#","temp":1.5,"updated":"2024-11-25T13:27:14.567Z"}` {
		t.Fatalf("item of another writer read as %+v (item %s)", got, got.Item)
	}
	// A write over it is conditioned on its updated value.
	err = s.Update(ctx, func(tx pipeline.Tx) error {
		rec, err := tx.Get(ctx, got.Key)
		if err != nil {
			return err
		}
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.cfg.Table), Item: other}); err != nil {
			return err // the same item again: its updated unchanged, no conflict
		}
		rec.Model, rec.Item, rec.Version = "Status", []byte(`{"temp":2}`), v1
		rec.Indexes = nil
		return tx.Put(ctx, rec)
	})
	if err != nil {
		t.Fatalf("write over another writer's item: %v", err)
	}
}

// TestItemTooLarge: an item over DynamoDB's 400 KB is refused for good
// with ErrTooLarge, naming the table and the key.
func TestItemTooLarge(t *testing.T) {
	cfg := testConfig(t)
	s := openStore(t, cfg)
	key := pipeline.Key{PK: "big", SK: "1"}
	r := &pipeline.Record{Key: key, Model: "Thing", Item: fmt.Appendf(nil, `{"blob":%q}`, strings.Repeat("x", 410*1024))}
	err := s.Update(t.Context(), func(tx pipeline.Tx) error { return tx.Put(t.Context(), r) })
	if !errors.Is(err, pipeline.ErrTooLarge) || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), cfg.Table) ||
		!strings.Contains(err.Error(), key.String()) {
		t.Fatalf("put of a 410 KB item: got %v, want a permanent ErrTooLarge naming the table and key", err)
	}
}

// TestScanInUpdate: a scan inside an Update sees the update's own writes,
// in key order.
func TestScanInUpdate(t *testing.T) {
	s := openStore(t, testConfig(t))
	ctx := t.Context()
	mk := func(sk string) *pipeline.Record {
		return &pipeline.Record{Key: pipeline.Key{PK: "p", SK: sk}, Model: "Thing", Item: []byte(`{}`),
			Indexes: []pipeline.IndexEntry{{Index: "gs1", Hash: "g", Sort: sk}}}
	}
	put(t, s, mk("a"), mk("c"), mk("e"))
	var primary, secondary []string
	err := s.Update(ctx, func(tx pipeline.Tx) error {
		primary, secondary = nil, nil
		if err := tx.Put(ctx, mk("b")); err != nil {
			return err
		}
		if err := tx.Delete(ctx, pipeline.Key{PK: "p", SK: "c"}); err != nil {
			return err
		}
		moved := mk("e")
		moved.Indexes = nil
		if err := tx.Put(ctx, moved); err != nil {
			return err
		}
		if err := tx.Scan(ctx, pipeline.Query{Hash: "p", Reverse: true}, func(rec *pipeline.Record, _ pipeline.Position) (bool, error) {
			primary = append(primary, rec.Key.SK)
			return true, nil
		}); err != nil {
			return err
		}
		return tx.Scan(ctx, pipeline.Query{Index: "gs1", Hash: "g"}, func(rec *pipeline.Record, _ pipeline.Position) (bool, error) {
			secondary = append(secondary, rec.Key.SK)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(primary, "") != "eba" || strings.Join(secondary, "") != "ab" {
		t.Fatalf("scans in the update: primary %q (want e b a), gs1 %q (want a b)", primary, secondary)
	}
}

// TestNumberIndexKey: an index key a model declares a number is an N key:
// queries order and compare it by value.
func TestNumberIndexKey(t *testing.T) {
	sch := parseSchema(t, `{format: 'onetable:1.1.0', version: '0.0.1',
		indexes: {primary: {hash: 'pk', sort: 'sk'}, gs1: {hash: 'board', sort: 'score'}},
		models: {Score: {pk: {type: 'string'}, sk: {type: 'string'}, board: {type: 'string'}, score: {type: 'number'}}}}`)
	s, err := Open(t.Context(), testConfig(t), sch, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	for i, score := range []string{"10", "9", "2.5", "-1", "100"} {
		put(t, s, &pipeline.Record{Key: pipeline.Key{PK: fmt.Sprint("s", i), SK: "x"}, Model: "Score",
			Item: fmt.Appendf(nil, `{"board":"b","score":%s}`, score), Indexes: []pipeline.IndexEntry{{Index: "gs1", Hash: "b", Sort: score}}})
	}
	scores := func(q pipeline.Query) string {
		var out []string
		err := s.View(t.Context(), func(tx pipeline.ReadTx) error {
			return tx.Scan(t.Context(), q, func(_ *pipeline.Record, pos pipeline.Position) (bool, error) {
				out = append(out, pos.Sort)
				return true, nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, " ")
	}
	if got := scores(pipeline.Query{Index: "gs1", Hash: "b"}); got != "-1 2.5 9 10 100" {
		t.Fatalf("number sort order: %s", got)
	}
	if got := scores(pipeline.Query{Index: "gs1", Hash: "b", Reverse: true, Sort: pipeline.SortCond{Op: pipeline.SortGT, Values: []string{"5"}}}); got != "100 10 9" {
		t.Fatalf("> 5 reverse: %s", got)
	}
	err = s.View(t.Context(), func(tx pipeline.ReadTx) error {
		return tx.Scan(t.Context(), pipeline.Query{Index: "gs1", Hash: "b", Sort: pipeline.SortCond{Op: pipeline.SortBegins, Values: []string{"1"}}},
			func(*pipeline.Record, pipeline.Position) (bool, error) { return true, nil })
	})
	if !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("begins on a number key: got %v, want ErrInvalid", err)
	}
}

// TestCreateTable: create_table makes the table the docs describe, and a
// second store opens it as it is.
func TestCreateTable(t *testing.T) {
	cfg := testConfig(t)
	openStore(t, cfg)
	c := rawClient(t)
	ctx := t.Context()
	out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(cfg.Table)})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table
	if d.TableStatus != types.TableStatusActive || d.StreamSpecification == nil || !aws.ToBool(d.StreamSpecification.StreamEnabled) ||
		d.StreamSpecification.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Fatalf("table status %s, stream %+v", d.TableStatus, d.StreamSpecification)
	}
	if d.BillingModeSummary == nil || d.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Fatalf("billing %+v", d.BillingModeSummary)
	}
	var names []string
	for _, g := range d.GlobalSecondaryIndexes {
		h, r := keyNames(g.KeySchema)
		names = append(names, aws.ToString(g.IndexName)+":"+h+"/"+r+":"+string(g.Projection.ProjectionType))
	}
	slices.Sort(names)
	if strings.Join(names, " ") != "gs1:gs1pk/gs1sk:ALL gs2:gs2pk/gs2sk:ALL iotod-owner:deviceId/updated:ALL iotod-type:_type/updated:ALL" {
		t.Fatalf("indexes %q", names)
	}
	ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(cfg.Table)})
	if err != nil || ttl.TimeToLiveDescription == nil || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != "expires" ||
		ttl.TimeToLiveDescription.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Fatalf("time to live %+v, %v", ttl.TimeToLiveDescription, err)
	}
	again := cfg
	again.CreateTable = false
	openStore(t, again)
}

// TestItemTooLargeInTransaction: an oversized item in a transaction of
// several is refused the same way.
func TestItemTooLargeInTransaction(t *testing.T) {
	cfg := testConfig(t)
	s := openStore(t, cfg)
	big := &pipeline.Record{Key: pipeline.Key{PK: "big", SK: "2"}, Model: "Thing", Item: fmt.Appendf(nil, `{"blob":%q}`, strings.Repeat("x", 410*1024))}
	small := counter(pipeline.Key{PK: "small", SK: "1"}, 1)
	err := s.Update(t.Context(), func(tx pipeline.Tx) error {
		if err := tx.Put(t.Context(), small); err != nil {
			return err
		}
		return tx.Put(t.Context(), big)
	})
	if !errors.Is(err, pipeline.ErrTooLarge) || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), cfg.Table) {
		t.Fatalf("transaction with a 410 KB item: got %v, want a permanent ErrTooLarge naming the table", err)
	}
	if _, err := getRecord(t, s, small.Key); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("the small item of the refused transaction: %v", err)
	}
}

// TestLocalIndex: a schema's local index is a local secondary index of
// the table, queried with the primary hash and its own sort key.
func TestLocalIndex(t *testing.T) {
	sch := parseSchema(t, `{format: 'onetable:1.1.0', version: '0.0.1',
		indexes: {primary: {hash: 'pk', sort: 'sk'}, ls1: {type: 'local', sort: 'at'}},
		models: {Event: {pk: {type: 'string'}, sk: {type: 'string'}, at: {type: 'string'}}}}`)
	cfg := testConfig(t)
	s, err := Open(t.Context(), cfg, sch, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	out, err := rawClient(t).DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(cfg.Table)})
	if err != nil || len(out.Table.LocalSecondaryIndexes) != 1 || aws.ToString(out.Table.LocalSecondaryIndexes[0].IndexName) != "ls1" {
		t.Fatalf("local indexes of the table: %+v, %v", out.Table.LocalSecondaryIndexes, err)
	}
	for i, at := range []string{"2024-03", "2024-01", "2024-02"} {
		put(t, s, &pipeline.Record{Key: pipeline.Key{PK: "dev", SK: fmt.Sprint("e", i)}, Model: "Event",
			Item: fmt.Appendf(nil, `{"at":%q}`, at), Indexes: []pipeline.IndexEntry{{Index: "ls1", Hash: "dev", Sort: at}}})
	}
	var got []string
	err = s.View(t.Context(), func(tx pipeline.ReadTx) error {
		return tx.Scan(t.Context(), pipeline.Query{Index: "ls1", Hash: "dev", Sort: pipeline.SortCond{Op: pipeline.SortGE, Values: []string{"2024-02"}}},
			func(rec *pipeline.Record, pos pipeline.Position) (bool, error) {
				got = append(got, rec.Key.SK+"@"+pos.Sort)
				return true, nil
			})
	})
	if err != nil || strings.Join(got, " ") != "e2@2024-02 e0@2024-03" {
		t.Fatalf("ls1 >= 2024-02: %q, %v", got, err)
	}
	err = s.Update(t.Context(), func(tx pipeline.Tx) error {
		return tx.Put(t.Context(), &pipeline.Record{Key: pipeline.Key{PK: "dev", SK: "bad"}, Model: "Event",
			Indexes: []pipeline.IndexEntry{{Index: "ls1", Hash: "other", Sort: "x"}}, Item: []byte(`{"at":"x"}`)})
	})
	if !errors.Is(err, pipeline.ErrInvalid) || !strings.Contains(err.Error(), "not the primary hash") {
		t.Fatalf("local index entry with another hash: %v", err)
	}
}
