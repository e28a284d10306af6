package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/dynamotest"
)

// captureEnv set to 1 makes TestCaptureRecords write testdata/records.json
// from DynamoDB Local (IOTOD_DYNAMODB_URL) again.
const captureEnv = "IOTOD_STREAM_CAPTURE"

// tee keeps the bodies of GetRecords answers that hold records.
type tee struct {
	mu      sync.Mutex
	answers [][]byte
}

func (t *tee) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".GetRecords") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if bytes.Contains(body, []byte(`"eventName"`)) {
		t.mu.Lock()
		t.answers = append(t.answers, body)
		t.mu.Unlock()
	}
	return resp, nil
}

// captureWrites are the writes whose stream records testdata/records.json
// holds, in order; convert_test.go states what each must become.
func captureWrites() []func(ctx context.Context, c *dynamodb.Client, table string) error {
	S := func(s string) ddb.AttributeValue { return &ddb.AttributeValueMemberS{Value: s} }
	N := func(s string) ddb.AttributeValue { return &ddb.AttributeValueMemberN{Value: s} }
	put := func(item map[string]ddb.AttributeValue) func(context.Context, *dynamodb.Client, string) error {
		return func(ctx context.Context, c *dynamodb.Client, table string) error {
			_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
			return err
		}
	}
	key := func(pk, sk string) map[string]ddb.AttributeValue {
		return map[string]ddb.AttributeValue{"pk": S(pk), "sk": S(sk)}
	}
	return []func(context.Context, *dynamodb.Client, string) error{
		// 0: a device's item as iotod's store writes it, every attribute type.
		put(map[string]ddb.AttributeValue{
			"pk": S("device#dev1"), "sk": S("reading#R1"), "_type": S("Reading"), "deviceId": S("dev1"), "id": S("R1"),
			"temp": N("21.5"), "big": N("12345678901234567890.123456789"), "tiny": N("-0.000000000000000000000000000001"),
			"created": S("2026-01-02T03:04:05.678Z"), "updated": S("2026-01-02T03:04:05.678Z"),
			"_version": S("0001767323045678.00000000.dev1"),
			"tags":     &ddb.AttributeValueMemberSS{Value: []string{"a", "b\"q"}},
			"counts":   &ddb.AttributeValueMemberNS{Value: []string{"1", "2.50"}},
			"blob":     &ddb.AttributeValueMemberB{Value: []byte{0, 1, 2, 255}},
			"blobs":    &ddb.AttributeValueMemberBS{Value: [][]byte{{1}, {2, 3}}},
			"meta": &ddb.AttributeValueMemberM{Value: map[string]ddb.AttributeValue{
				"list": &ddb.AttributeValueMemberL{Value: []ddb.AttributeValue{N("1"), S("x"), &ddb.AttributeValueMemberNULL{Value: true}}},
				"ok":   &ddb.AttributeValueMemberBOOL{Value: true},
				"none": &ddb.AttributeValueMemberNULL{Value: true},
			}},
		}),
		// 1: OneTable's update of that item: it keeps iotod's _version.
		func(ctx context.Context, c *dynamodb.Client, table string) error {
			_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key("device#dev1", "reading#R1"),
				UpdateExpression:          aws.String("SET #t = :t, #u = :u"),
				ExpressionAttributeNames:  map[string]string{"#t": "temp", "#u": "updated"},
				ExpressionAttributeValues: map[string]ddb.AttributeValue{":t": N("22"), ":u": S("2026-01-02T03:05:00.000Z")}})
			return err
		},
		// 2: iotod's store replaces it with a change of dev2.
		put(map[string]ddb.AttributeValue{
			"pk": S("device#dev1"), "sk": S("reading#R1"), "_type": S("Reading"), "deviceId": S("dev1"), "id": S("R1"),
			"temp": N("23"), "updated": S("2026-01-02T03:06:00.000Z"), "_version": S("0001767323160000.00000002.dev2"),
		}),
		// 3: OneTable creates an item: no _version, updated in epoch ms.
		put(map[string]ddb.AttributeValue{
			"pk": S("status#S1"), "sk": S("status#"), "_type": S("Status"), "id": S("S1"), "temp": N("5"),
			"created": N("1767323045999"), "updated": N("1767323045999"),
		}),
		// 4: the SDK writes an item with neither _version nor updated.
		put(map[string]ddb.AttributeValue{"pk": S("note#N1"), "sk": S("note#"), "_type": S("Note"), "text": S("hi")}),
		// 5: a replicated remove of R1: the store's tombstone, body {"model","owner"}.
		put(map[string]ddb.AttributeValue{
			"pk": S("device#dev1"), "sk": S("reading#R1"), "_type": S("~tombstone"), "model": S("Reading"), "owner": S("dev1"),
			"_version": S("0001767323170000.00000000.dev2"), "_expires": N("1767927970"),
		}),
		// 6: the SDK deletes the Status item.
		func(ctx context.Context, c *dynamodb.Client, table string) error {
			_, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key("status#S1", "status#")})
			return err
		},
		// 7: iotod's own bookkeeping (a stream lease).
		put(map[string]ddb.AttributeValue{"pk": S("~stream"), "sk": S("lease#shardId-1"), "_type": S("~stream"), "owner": S("w1")}),
		// 8: an item of no model (no _type).
		put(map[string]ddb.AttributeValue{"pk": S("raw#1"), "sk": S("raw#"), "x": N("1")}),
		// 9: the store added attributes the item did not hold (listed in _iotod).
		put(map[string]ddb.AttributeValue{
			"pk": S("device#dev1"), "sk": S("reading#R2"), "_type": S("Reading"), "id": S("R2"), "deviceId": S("dev1"),
			"_version": S("0001767323180000.00000000.dev1"), "_expires": N("1767927970"),
			"_iotod": &ddb.AttributeValueMemberSS{Value: []string{"_expires"}},
		}),
		// 10: a remove's tombstone written with the model in _model.
		put(map[string]ddb.AttributeValue{
			"pk": S("device#dev1"), "sk": S("reading#R3"), "_type": S("~tombstone"), "_model": S("Reading"),
			"_version": S("0001767323190000.00000001.dev3"),
		}),
		// 11: the tombstone of R1 deleted (as its TTL does).
		func(ctx context.Context, c *dynamodb.Client, table string) error {
			_, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key("device#dev1", "reading#R1")})
			return err
		},
		// 12: iotod's database meta record.
		put(map[string]ddb.AttributeValue{"pk": S("~meta"), "sk": S("schema"), "_type": S("~meta"), "_value": S(`{"v":1}`)}),
		// 13: a write without a _version and an updated older than nothing: ISO date only.
		put(map[string]ddb.AttributeValue{"pk": S("note#N2"), "sk": S("note#"), "_type": S("Note"), "updated": S("2026-01-02")}),
	}
}

// TestCaptureRecords writes testdata/records.json: the GetRecords answers
// DynamoDB Local gives for captureWrites. It runs only with
// IOTOD_STREAM_CAPTURE=1.
func TestCaptureRecords(t *testing.T) {
	if os.Getenv(captureEnv) != "1" {
		t.Skip("set " + captureEnv + "=1 (and IOTOD_DYNAMODB_URL) to capture testdata/records.json again")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := dynamotest.Client(t)
	table, arn := dynamotest.StreamTable(t, c, "capture")
	writes := captureWrites()
	for i, w := range writes {
		require.NoError(t, w(ctx, c, table), "write %d", i)
	}
	tp := &tee{}
	sc := dynamodbstreams.New(dynamodbstreams.Options{
		BaseEndpoint: aws.String(dynamotest.URL(t)), Region: dynamotest.Region,
		Credentials: credentials.NewStaticCredentialsProvider("iotod", "iotod", ""),
		HTTPClient:  &http.Client{Transport: tp},
	})
	recs, err := dynamotest.StreamRecords(ctx, sc, arn, len(writes))
	require.NoError(t, err)
	require.Len(t, recs, len(writes))
	var out bytes.Buffer
	out.WriteString("[\n")
	for i, a := range tp.answers {
		if i > 0 {
			out.WriteString(",\n")
		}
		require.NoError(t, json.Indent(&out, a, "", " "))
	}
	out.WriteString("\n]\n")
	require.NoError(t, os.WriteFile(filepath.Join("testdata", "records.json"), out.Bytes(), 0o644))
}
