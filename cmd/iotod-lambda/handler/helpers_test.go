package handler_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// mosquittoURL is the broker of make test (IOTOD_MOSQUITTO_URL): the test
// skips under -short when it is unset and fails otherwise.
func mosquittoURL(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs mosquitto and DynamoDB Local: skipped under -short")
	}
	u := strings.TrimSpace(os.Getenv("IOTOD_MOSQUITTO_URL"))
	if u == "" {
		if testing.Short() {
			t.Skip("IOTOD_MOSQUITTO_URL is not set: skipping under -short")
		}
		t.Fatal("IOTOD_MOSQUITTO_URL is not set: start the services (make services-start; export $(scripts/services.sh env)) or use -short")
	}
	return u
}

// readStream reads want records from the stream's shards (TRIM_HORIZON).
func readStream(t *testing.T, c *dynamodbstreams.Client, arn string, want int) []types.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ds, err := c.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("describe stream: %v", err)
	}
	var iters []*string
	for _, sh := range ds.StreamDescription.Shards {
		it, err := c.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn),
			ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("shard iterator: %v", err)
		}
		iters = append(iters, it.ShardIterator)
	}
	var out []types.Record
	for len(out) < want {
		if ctx.Err() != nil {
			t.Fatalf("read %d stream records, want %d", len(out), want)
		}
		for i, it := range iters {
			if it == nil {
				continue
			}
			r, err := c.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it})
			if err != nil {
				t.Fatalf("get records: %v", err)
			}
			out = append(out, r.Records...)
			iters[i] = r.NextShardIterator
		}
		if len(out) < want {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return out
}

// eventRecord is the record as Lambda hands it to the function.
func eventRecord(t *testing.T, r types.Record, arn string) events.DynamoDBEventRecord {
	t.Helper()
	sr := r.Dynamodb
	er := events.DynamoDBEventRecord{
		AWSRegion: aws.ToString(r.AwsRegion), EventID: aws.ToString(r.EventID), EventName: string(r.EventName),
		EventSource: "aws:dynamodb", EventVersion: aws.ToString(r.EventVersion), EventSourceArn: arn,
		Change: events.DynamoDBStreamRecord{
			Keys: eventAttrs(t, sr.Keys), NewImage: eventAttrs(t, sr.NewImage), OldImage: eventAttrs(t, sr.OldImage),
			SequenceNumber: aws.ToString(sr.SequenceNumber), SizeBytes: aws.ToInt64(sr.SizeBytes),
			StreamViewType: string(sr.StreamViewType),
		},
	}
	if sr.ApproximateCreationDateTime != nil {
		er.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *sr.ApproximateCreationDateTime}
	}
	if id := r.UserIdentity; id != nil {
		er.UserIdentity = &events.DynamoDBUserIdentity{Type: aws.ToString(id.Type), PrincipalID: aws.ToString(id.PrincipalId)}
	}
	return er
}

func eventAttrs(t *testing.T, m map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	if m == nil {
		return nil
	}
	out := map[string]events.DynamoDBAttributeValue{}
	for k, v := range m {
		out[k] = eventAttr(t, v)
	}
	return out
}

func eventAttr(t *testing.T, av types.AttributeValue) events.DynamoDBAttributeValue {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value)
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute()
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value)
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value)
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value)
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value)
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			l[i] = eventAttr(t, e)
		}
		return events.NewListAttribute(l)
	case *types.AttributeValueMemberM:
		return events.NewMapAttribute(eventAttrs(t, v.Value))
	}
	t.Fatalf("attribute type %T", av)
	return events.DynamoDBAttributeValue{}
}
