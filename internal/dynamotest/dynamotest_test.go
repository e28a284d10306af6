package dynamotest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDecide: an unset address skips under -short and fails otherwise; a set one
// is used, without a trailing slash; a malformed one fails.
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		env             string
		short           bool
		url, skip, fail string
	}{
		{env: "http://127.0.0.1:8001", url: "http://127.0.0.1:8001"},
		{env: "http://127.0.0.1:8001/", short: true, url: "http://127.0.0.1:8001"},
		{env: "", short: true, skip: "IOTOD_DYNAMODB_URL is not set"},
		{env: "  ", short: false, fail: "IOTOD_DYNAMODB_URL is not set"},
		{env: "127.0.0.1:8001", fail: "want an http:// address"},
	} {
		url, skip, fail := decide(tc.env, tc.short)
		assert.Equal(t, tc.url, url, "env %q short %v", tc.env, tc.short)
		if tc.skip == "" {
			assert.Empty(t, skip, "env %q short %v", tc.env, tc.short)
		} else {
			assert.Contains(t, skip, tc.skip)
			assert.Contains(t, skip, "make services-start")
		}
		if tc.fail == "" {
			assert.Empty(t, fail, "env %q short %v", tc.env, tc.short)
		} else {
			assert.Contains(t, fail, tc.fail)
		}
	}
}

func TestUniqueName(t *testing.T) {
	a, b := UniqueName("items"), UniqueName("items")
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^items-[0-9a-f]{12}$`, a)
}

// TestSmoke: a fresh table with a GSI and a stream; put, get, query (table and
// index), and the put read back from DynamoDB Streams; the table is gone after
// the subtest's cleanup.
func TestSmoke(t *testing.T) {
	c := Client(t)
	sc := StreamsClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	var table string
	t.Run("table", func(t *testing.T) {
		var arn string
		table, arn = StreamTable(t, c, "smoke", GSI{Name: "gs1", Hash: "gs1pk", Sort: "gs1sk"})
		require.True(t, strings.HasPrefix(table, "smoke-"), table)

		desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		require.NoError(t, err)
		assert.Equal(t, types.TableStatusActive, desc.Table.TableStatus)
		require.Len(t, desc.Table.GlobalSecondaryIndexes, 1)
		assert.Equal(t, "gs1", aws.ToString(desc.Table.GlobalSecondaryIndexes[0].IndexName))
		assert.Equal(t, types.StreamViewTypeNewAndOldImages, desc.Table.StreamSpecification.StreamViewType)

		item := map[string]types.AttributeValue{
			"pk":    &types.AttributeValueMemberS{Value: "device#d1"},
			"sk":    &types.AttributeValueMemberS{Value: "reading#00000001"},
			"gs1pk": &types.AttributeValueMemberS{Value: "temp"},
			"gs1sk": &types.AttributeValueMemberS{Value: "d1"},
			"temp":  &types.AttributeValueMemberN{Value: "21.5"},
			"on":    &types.AttributeValueMemberBOOL{Value: true},
			"tags":  &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "a"}}},
		}
		_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
		require.NoError(t, err)

		got, err := c.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      aws.String(table),
			Key:            map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]},
			ConsistentRead: aws.Bool(true),
		})
		require.NoError(t, err)
		assert.Equal(t, item, got.Item)

		q, err := c.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(table),
			KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :sk)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": item["pk"], ":sk": &types.AttributeValueMemberS{Value: "reading#"}},
		})
		require.NoError(t, err)
		require.Len(t, q.Items, 1)
		assert.Equal(t, item, q.Items[0])

		gq, err := c.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(table),
			IndexName:                 aws.String("gs1"),
			KeyConditionExpression:    aws.String("gs1pk = :h"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":h": item["gs1pk"]},
		})
		require.NoError(t, err)
		require.Len(t, gq.Items, 1)
		assert.Equal(t, item, gq.Items[0])

		recs, err := StreamRecords(ctx, sc, arn, 1)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		r := recs[0]
		assert.Equal(t, streamtypes.OperationTypeInsert, r.EventName)
		require.NotNil(t, r.Dynamodb)
		assert.Equal(t, streamtypes.StreamViewTypeNewAndOldImages, r.Dynamodb.StreamViewType)
		assert.Empty(t, r.Dynamodb.OldImage)
		assert.Equal(t, &streamtypes.AttributeValueMemberS{Value: "device#d1"}, r.Dynamodb.Keys["pk"])
		assert.Equal(t, &streamtypes.AttributeValueMemberN{Value: "21.5"}, r.Dynamodb.NewImage["temp"])
		assert.Equal(t, &streamtypes.AttributeValueMemberBOOL{Value: true}, r.Dynamodb.NewImage["on"])
		assert.Len(t, r.Dynamodb.NewImage, len(item))
	})
	require.NotEmpty(t, table)

	_, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var nf *types.ResourceNotFoundException
	assert.True(t, errors.As(err, &nf), "table %s still there after cleanup: %v", table, err)
}
