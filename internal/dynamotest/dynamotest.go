// Package dynamotest gives tests a DynamoDB to talk to: DynamoDB Local, started by
// scripts/services.sh (make test does it) at the address in IOTOD_DYNAMODB_URL.
//
//	url := dynamotest.URL(t)                    // or skip (-short) / fail when unset
//	c := dynamotest.Client(t)                   // an aws-sdk-go-v2 client for it
//	table := dynamotest.Table(t, c, "things")   // a fresh table, deleted at cleanup
//
// By hand: make services-start && export $(scripts/services.sh env). See docs/testing.md.
package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// EnvURL names the environment variable that holds DynamoDB Local's address,
// for example http://127.0.0.1:18000.
const EnvURL = "IOTOD_DYNAMODB_URL"

// Region is the region the clients sign for. DynamoDB Local runs with -sharedDb,
// so any region and any credentials see the same tables.
const Region = "us-east-1"

// URL returns DynamoDB Local's address from IOTOD_DYNAMODB_URL. When the variable
// is unset it skips the test under go test -short, and fails it otherwise, so that
// a full run (make test) can never silently leave the DynamoDB tests out.
func URL(t testing.TB) string {
	t.Helper()
	url, skip, fail := decide(os.Getenv(EnvURL), testing.Short())
	switch {
	case skip != "":
		t.Skip(skip)
	case fail != "":
		t.Fatal(fail)
	}
	return url
}

// decide is URL's logic: the address, or why to skip, or why to fail.
func decide(env string, short bool) (url, skip, fail string) {
	env = strings.TrimSpace(env)
	if env != "" {
		if !strings.HasPrefix(env, "http://") && !strings.HasPrefix(env, "https://") {
			return "", "", fmt.Sprintf("%s=%q: want an http:// address such as http://127.0.0.1:8001", EnvURL, env)
		}
		return strings.TrimRight(env, "/"), "", ""
	}
	const how = "start DynamoDB Local with `make services-start` and `export $(scripts/services.sh env)`, or run `make test` (docs/testing.md)"
	if short {
		return "", EnvURL + " is not set: skipping this DynamoDB test under -short; " + how, ""
	}
	return "", "", EnvURL + " is not set: this test needs DynamoDB Local; " + how + ", or use go test -short to skip it"
}

// credentialsProvider is static and made up: DynamoDB Local accepts any.
func credentialsProvider() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("iotod", "iotod", "")
}

// Client returns a DynamoDB client for DynamoDB Local (see URL). It does not check
// the CRC32 of responses: DynamoDB Local sends a wrong one on error responses.
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	url := URL(t)
	return dynamodb.New(dynamodb.Options{
		BaseEndpoint:                    aws.String(url),
		Region:                          Region,
		Credentials:                     credentialsProvider(),
		DisableValidateResponseChecksum: true,
	})
}

// StreamsClient returns a DynamoDB Streams client for DynamoDB Local (see URL).
func StreamsClient(t testing.TB) *dynamodbstreams.Client {
	t.Helper()
	url := URL(t)
	return dynamodbstreams.New(dynamodbstreams.Options{
		BaseEndpoint: aws.String(url),
		Region:       Region,
		Credentials:  credentialsProvider(),
	})
}

// GSI is a global secondary index for Table: string keys Hash and Sort (Sort may
// be empty), every attribute projected.
type GSI struct {
	Name, Hash, Sort string
}

// Table creates a fresh table named name plus a random suffix, with string keys
// pk (hash) and sk (range) and the given GSIs, on-demand billing, waits until it
// and its indexes are active, and deletes it when the test ends. It returns the
// table's name.
func Table(t testing.TB, c *dynamodb.Client, name string, gsis ...GSI) string {
	t.Helper()
	table, _ := createTable(t, c, name, false, gsis)
	return table
}

// StreamTable is Table with DynamoDB Streams on (NEW_AND_OLD_IMAGES); it also
// returns the stream's ARN. Keep the writes to stream tables few: DynamoDB Local
// slows down as stream records pile up (docs/testing.md).
func StreamTable(t testing.TB, c *dynamodb.Client, name string, gsis ...GSI) (table, streamARN string) {
	t.Helper()
	return createTable(t, c, name, true, gsis)
}

// TableInput is the CreateTable input that Table sends, for tests that create a
// table themselves (for example to check a store's own create_table).
func TableInput(table string, stream bool, gsis ...GSI) *dynamodb.CreateTableInput {
	attrs := map[string]bool{"pk": true, "sk": true}
	defs := []types.AttributeDefinition{
		{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
		{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
	}
	def := func(a string) {
		if !attrs[a] {
			attrs[a] = true
			defs = append(defs, types.AttributeDefinition{AttributeName: aws.String(a), AttributeType: types.ScalarAttributeTypeS})
		}
	}
	in := &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	}
	for _, g := range gsis {
		def(g.Hash)
		keys := []types.KeySchemaElement{{AttributeName: aws.String(g.Hash), KeyType: types.KeyTypeHash}}
		if g.Sort != "" {
			def(g.Sort)
			keys = append(keys, types.KeySchemaElement{AttributeName: aws.String(g.Sort), KeyType: types.KeyTypeRange})
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:  aws.String(g.Name),
			KeySchema:  keys,
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		})
	}
	in.AttributeDefinitions = defs
	if stream {
		in.StreamSpecification = &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewTypeNewAndOldImages,
		}
	}
	return in
}

// UniqueName returns prefix plus a random suffix, a valid table name.
func UniqueName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	if prefix == "" {
		prefix = "t"
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

func createTable(t testing.TB, c *dynamodb.Client, name string, stream bool, gsis []GSI) (string, string) {
	t.Helper()
	table := UniqueName(name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.CreateTable(ctx, TableInput(table, stream, gsis...))
	if err != nil {
		t.Fatalf("create table %s: %v", table, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				t.Errorf("delete table %s: %v", table, err)
			}
		}
	})
	if err := WaitActive(ctx, c, table); err != nil {
		t.Fatal(err)
	}
	arn := ""
	if stream {
		arn = aws.ToString(out.TableDescription.LatestStreamArn)
		if arn == "" {
			t.Fatalf("create table %s: streams on but no stream ARN in the answer", table)
		}
	}
	return table, arn
}

// WaitActive polls until table and all its GSIs are ACTIVE, or ctx ends.
func WaitActive(ctx context.Context, c *dynamodb.Client, table string) error {
	for {
		out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return fmt.Errorf("describe table %s: %w", table, err)
		}
		active := out.Table.TableStatus == types.TableStatusActive
		for _, g := range out.Table.GlobalSecondaryIndexes {
			active = active && g.IndexStatus == types.IndexStatusActive
		}
		if active {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("table %s not active (status %s): %w", table, out.Table.TableStatus, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StreamRecords reads the stream streamARN from the start of every shard until it
// has at least n records or ctx ends (then it returns what it has with ctx's
// error). DynamoDB Local shows a write in the stream after about 15 ms; its
// records' ApproximateCreationDateTime is cut to the minute: never assert on it.
func StreamRecords(ctx context.Context, sc *dynamodbstreams.Client, streamARN string, n int) ([]streamtypes.Record, error) {
	desc, err := sc.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(streamARN)})
	if err != nil {
		return nil, fmt.Errorf("describe stream %s: %w", streamARN, err)
	}
	iters := map[string]*string{}
	for _, sh := range desc.StreamDescription.Shards {
		it, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn:         aws.String(streamARN),
			ShardId:           sh.ShardId,
			ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, fmt.Errorf("shard iterator %s: %w", aws.ToString(sh.ShardId), err)
		}
		iters[aws.ToString(sh.ShardId)] = it.ShardIterator
	}
	var recs []streamtypes.Record
	for {
		for id, it := range iters {
			if it == nil {
				continue
			}
			out, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it})
			if err != nil {
				return recs, fmt.Errorf("get records of shard %s: %w", id, err)
			}
			recs = append(recs, out.Records...)
			iters[id] = out.NextShardIterator
		}
		if len(recs) >= n {
			return recs, nil
		}
		select {
		case <-ctx.Done():
			return recs, fmt.Errorf("stream %s: %d records, want %d: %w", streamARN, len(recs), n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
