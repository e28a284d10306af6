package stream

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

// fakeStreams is a stream whose shards split: DynamoDB Local never splits
// or closes a shard, so this is how parent and child shards are tested.
// DescribeStream answers one shard per page; GetRecords one record per
// call.
type fakeStreams struct {
	mu     sync.Mutex
	shards []*fakeShard
	log    []string // "shard:get" per GetRecords, "shard:end" when the end was returned
}

type fakeShard struct {
	id, parent string
	recs       []types.Record
	closed     bool
}

func (f *fakeStreams) DescribeStream(_ context.Context, in *dynamodbstreams.DescribeStreamInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := 0
	if start := aws.ToString(in.ExclusiveStartShardId); start != "" {
		i = slices.IndexFunc(f.shards, func(s *fakeShard) bool { return s.id == start }) + 1
	}
	desc := &types.StreamDescription{StreamArn: in.StreamArn, StreamStatus: types.StreamStatusEnabled}
	if i < len(f.shards) {
		s := f.shards[i]
		sh := types.Shard{ShardId: aws.String(s.id), SequenceNumberRange: &types.SequenceNumberRange{}}
		if s.parent != "" {
			sh.ParentShardId = aws.String(s.parent)
		}
		desc.Shards = []types.Shard{sh}
		if i+1 < len(f.shards) {
			desc.LastEvaluatedShardId = aws.String(s.id)
		}
	}
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: desc}, nil
}

func (f *fakeStreams) shard(id string) *fakeShard {
	for _, s := range f.shards {
		if s.id == id {
			return s
		}
	}
	return nil
}

func (f *fakeStreams) GetShardIterator(_ context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shard(aws.ToString(in.ShardId))
	if s == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no shard " + aws.ToString(in.ShardId))}
	}
	pos := 0
	if in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber {
		pos = slices.IndexFunc(s.recs, func(r types.Record) bool {
			return aws.ToString(r.Dynamodb.SequenceNumber) == aws.ToString(in.SequenceNumber)
		}) + 1
	}
	f.log = append(f.log, s.id+":iterator@"+strconv.Itoa(pos))
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s|%d", s.id, pos))}, nil
}

func (f *fakeStreams) GetRecords(_ context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, p, _ := strings.Cut(aws.ToString(in.ShardIterator), "|")
	pos, _ := strconv.Atoi(p)
	s := f.shard(id)
	f.log = append(f.log, id+":get")
	out := &dynamodbstreams.GetRecordsOutput{}
	if pos < len(s.recs) {
		out.Records = s.recs[pos : pos+1]
		pos++
	}
	if pos >= len(s.recs) && s.closed && len(out.Records) == 0 {
		f.log = append(f.log, id+":end")
		return out, nil
	}
	out.NextShardIterator = aws.String(fmt.Sprintf("%s|%d", id, pos))
	return out, nil
}

func (f *fakeStreams) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

var fakeSeq = 1000

func fakeRecords(names ...string) []types.Record {
	var out []types.Record
	for _, n := range names {
		fakeSeq++
		v := pipeline.Version{Wall: 1767323045678, Counter: uint32(fakeSeq), Origin: "dev1"}
		out = append(out, types.Record{EventName: types.OperationTypeInsert, Dynamodb: &types.StreamRecord{
			SequenceNumber: aws.String(strconv.Itoa(fakeSeq)),
			Keys:           map[string]types.AttributeValue{"pk": S("thing#" + n), "sk": S("thing#")},
			NewImage: map[string]types.AttributeValue{"pk": S("thing#" + n), "sk": S("thing#"), "_type": S("Thing"),
				"_version": S(v.String())},
		}})
	}
	return out
}

func index(events []string, e string) int {
	return slices.Index(events, e)
}

// TestChildShardsAfterParent: the shards of a split are read in order: a
// child only after its parent was read to its end, so every change of
// the parent comes before any of its children; closed shards are
// checkpointed as ended, their leases released, and a new worker does
// not read them again.
func TestChildShardsAfterParent(t *testing.T) {
	e := newEnv(t)
	f := &fakeStreams{shards: []*fakeShard{
		{id: "shard-C1", parent: "shard-P", recs: fakeRecords("c1")},
		{id: "shard-Q", recs: fakeRecords("q1")},
		{id: "shard-P", parent: "shard-gone", recs: fakeRecords("p1", "p2", "p3"), closed: true},
		{id: "shard-C2", parent: "shard-P", recs: fakeRecords("c2"), closed: true},
	}}
	a := e.source(t, func(c *Config) { c.Streams = f })
	got := read(t, a, 0, 6, 10*time.Second)
	pos := map[string]uint64{}
	for _, c := range got {
		pos[strings.TrimPrefix(c.Key.PK, "thing#")] = c.Seq
	}
	assert.Less(t, pos["p1"], pos["p2"])
	assert.Less(t, pos["p2"], pos["p3"])
	assert.Less(t, pos["p3"], pos["c1"], "the parent's changes come before its children's")
	assert.Less(t, pos["p3"], pos["c2"])
	ev := f.events()
	end := index(ev, "shard-P:end")
	require.GreaterOrEqual(t, end, 0, "the parent was read to its end: %v", ev)
	for _, child := range []string{"shard-C1", "shard-C2"} {
		first := index(ev, child+":iterator@0")
		require.GreaterOrEqual(t, first, 0, "%s read: %v", child, ev)
		assert.Greater(t, first, end, "%s starts after its parent's end: %v", child, ev)
	}

	require.NoError(t, a.Trim(context.Background(), got[len(got)-1].Seq))
	ended := func() map[string]bool {
		out, err := e.c.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(e.table),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]ddb.AttributeValue{":pk": sv(bookkeepingPK)}, ConsistentRead: aws.Bool(true)})
		require.NoError(t, err)
		m := map[string]bool{}
		for _, it := range out.Items {
			sk := str(it, "sk")
			if e, ok := it[attrEnded].(*ddb.AttributeValueMemberBOOL); ok && e.Value {
				m[sk] = true
			}
			if strings.HasPrefix(sk, leasePrefix) && str(it, attrOwner) == "" {
				m[sk+" released"] = true
			}
		}
		return m
	}
	require.Eventually(t, func() bool {
		m := ended()
		return m["checkpoint#shard-P"] && m["checkpoint#shard-C2"] && m["lease#shard-P released"] && m["lease#shard-C2 released"]
	}, 20*time.Second, 50*time.Millisecond, "closed shards checkpointed as ended, leases released: %v", ended())
	assert.False(t, ended()["checkpoint#shard-Q"], "an open shard is not ended")
	assert.ElementsMatch(t, []string{"shard-C1", "shard-Q"}, a.Owned(), "a worker keeps the open shards only")
	require.NoError(t, a.Close(context.Background()))

	before := len(f.events())
	b := e.source(t, func(c *Config) { c.Streams = f })
	require.Eventually(t, func() bool { return len(b.Owned()) == 2 }, 5*time.Second, 20*time.Millisecond)
	quiet(t, b, 0, 300*time.Millisecond)
	for _, ev := range f.events()[before:] {
		assert.False(t, strings.HasPrefix(ev, "shard-P:") || strings.HasPrefix(ev, "shard-C2:"),
			"a shard checkpointed to its end is not read again: %s", ev)
	}
	assert.Contains(t, f.events()[before:], "shard-Q:iterator@1", "an open shard resumes after its checkpoint")
}
