package dynamodb

import (
	"context"
	"log/slog"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/iotod/iotod/internal/dynamotest"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// dynamoURL is the DynamoDB Local endpoint of the live tests
// (IOTOD_DYNAMODB_URL): unset, the test is skipped under -short and fails
// otherwise.
func dynamoURL(t testing.TB) string { return dynamotest.URL(t) }

// rawClient is a plain DynamoDB client on the test endpoint, to set up and
// inspect tables beside the store.
func rawClient(t testing.TB) *dynamodb.Client { return dynamotest.Client(t) }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// tableName is a fresh table name for t.
func tableName(t testing.TB) string {
	name := unsafeName.ReplaceAllString(t.Name(), "-")
	if len(name) > 200 {
		name = name[len(name)-200:]
	}
	return dynamotest.UniqueName("iotod-" + name)
}

// dropTable deletes the table when t ends.
func dropTable(t testing.TB, table string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = rawClient(t).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
}

// testConfig is a config for DynamoDB Local on a fresh table (dropped when
// t ends), created by the store, with quick retries.
func testConfig(t testing.TB) Config {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.Table = tableName(t)
	cfg.Region = dynamotest.Region
	cfg.Endpoint = dynamoURL(t)
	cfg.AccessKeyID, cfg.SecretAccessKey = "iotod", "iotod"
	cfg.CreateTable = true
	cfg.Stream = false // the store's own tests; the stream source is tested where it is wired
	cfg.RetryDelay = 5 * time.Millisecond
	cfg.MaxRetryDelay = 50 * time.Millisecond
	dropTable(t, cfg.Table)
	return cfg
}

const testSchemaText = `{
  format: 'onetable:1.1.0', version: '0.0.1',
  indexes: {
    primary: {hash: 'pk', sort: 'sk'},
    gs1: {hash: 'gs1pk', sort: 'gs1sk'},
    gs2: {hash: 'gs2pk', sort: 'gs2sk'},
  },
  params: {isoDates: true, timestamps: true},
  models: {
    Status: {
      pk: {type: 'string', value: 'status#${id}'},
      sk: {type: 'string', value: 'status#'},
      id: {type: 'string', generate: 'ulid'},
      gs1pk: {type: 'string', value: 'device#${deviceId}'},
      gs1sk: {type: 'string', value: 'status#${id}'},
      deviceId: {type: 'string'},
      temp: {type: 'number'},
      expires: {type: 'date', ttl: true},
      created: {type: 'date'},
      updated: {type: 'date'},
    },
  },
}`

func testSchema(t testing.TB) *schema.Schema {
	t.Helper()
	sch, err := schema.ParseBytes([]byte(testSchemaText), "json5", "test schema")
	if err != nil {
		t.Fatalf("test schema: %v", err)
	}
	return sch
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// openStore opens a store on cfg, closed when t ends.
func openStore(t testing.TB, cfg Config, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), cfg, testSchema(t), testLogger(t), opts...)
	if err != nil {
		t.Fatalf("open table %s: %v", cfg.Table, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// suiteOpener opens a store per suite directory: the first open of a
// directory makes a fresh table, a reopen is a new client on that table.
func suiteOpener() func(t *testing.T, dir string) pipeline.Store {
	var mu sync.Mutex
	tables := map[string]Config{}
	return func(t *testing.T, dir string) pipeline.Store {
		mu.Lock()
		cfg, ok := tables[dir]
		if !ok {
			cfg = testConfig(t)
			tables[dir] = cfg
		}
		mu.Unlock()
		s, err := Open(t.Context(), cfg, testSchema(t), testLogger(t))
		if err != nil {
			t.Fatalf("open table %s: %v", cfg.Table, err)
		}
		return s
	}
}

func parseSchema(t testing.TB, text string) *schema.Schema {
	t.Helper()
	sch, err := schema.ParseBytes([]byte(text), "json5", "test schema")
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	return sch
}
