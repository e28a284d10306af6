package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/dynamotest"
	"github.com/iotod/iotod/pipeline"
)

// testLogger logs to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// fast are the timings of the sources under test.
func fast(c Config) Config {
	c.LeaseDuration = 3 * time.Second // a renewal may take a second or two on a loaded DynamoDB Local
	c.RenewInterval = 500 * time.Millisecond
	c.RefreshInterval = 200 * time.Millisecond
	c.PollInterval = 30 * time.Millisecond
	c.RetryDelay = 5 * time.Millisecond
	c.MaxRetryDelay = 50 * time.Millisecond
	return c
}

type env struct {
	c     *dynamodb.Client
	sc    *dynamodbstreams.Client
	table string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := dynamotest.Client(t)
	table, _ := dynamotest.StreamTable(t, c, "stream")
	return &env{c: c, sc: dynamotest.StreamsClient(t), table: table}
}

// source makes a started source on e's table, closed at cleanup.
func (e *env) source(t *testing.T, edit func(*Config)) *Source {
	t.Helper()
	cfg := fast(Config{Client: e.c, Streams: e.sc, Table: e.table, Site: testSite, Worker: t.Name(), Logger: testLogger(t)})
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, s.Close(ctx))
	})
	return s
}

func (e *env) put(t *testing.T, kv ...string) {
	t.Helper()
	item := map[string]ddb.AttributeValue{}
	for i := 0; i < len(kv); i += 2 {
		item[kv[i]] = &ddb.AttributeValueMemberS{Value: kv[i+1]}
	}
	_, err := e.c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item})
	require.NoError(t, err)
}

func (e *env) del(t *testing.T, pk, sk string) {
	t.Helper()
	_, err := e.c.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(e.table),
		Key: map[string]ddb.AttributeValue{"pk": &ddb.AttributeValueMemberS{Value: pk}, "sk": &ddb.AttributeValueMemberS{Value: sk}}})
	require.NoError(t, err)
}

// thing writes item i of model Thing as iotod's store would, with a
// version of origin.
func (e *env) thing(t *testing.T, i int, origin string) {
	t.Helper()
	v := pipeline.Version{Wall: time.Now().UnixMilli(), Counter: uint32(i), Origin: origin}
	e.put(t, "pk", "thing#"+fmt.Sprint(i), "sk", "thing#", "_type", "Thing", "id", fmt.Sprint(i), "_version", v.String())
}

// read reads from s after after until it has n changes or the timeout
// passes.
func read(t *testing.T, s *Source, after uint64, n int, timeout time.Duration) []pipeline.Change {
	t.Helper()
	ctx := context.Background()
	var got []pipeline.Change
	deadline := time.Now().Add(timeout)
	for len(got) < n && time.Now().Before(deadline) {
		chs, err := s.Read(ctx, after, n-len(got))
		require.NoError(t, err)
		if len(chs) > 0 {
			got = append(got, chs...)
			after = chs[len(chs)-1].Seq
			continue
		}
		select {
		case <-s.Notify():
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.Len(t, got, n, "changes read: %v", ids(got))
	return got
}

// quiet checks that s hands out nothing after after for d.
func quiet(t *testing.T, s *Source, after uint64, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	chs, err := s.Read(context.Background(), after, 100)
	require.NoError(t, err)
	require.Empty(t, ids(chs), "nothing more is handed out")
}

func ids(chs []pipeline.Change) []string {
	out := make([]string, len(chs))
	for i, c := range chs {
		out[i] = fmt.Sprintf("%s:%s %s", c.Op, c.Model, c.Key.PK)
	}
	return out
}

func (e *env) checkpoints(t *testing.T) map[string]string {
	t.Helper()
	out, err := e.c.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(e.table),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":pk": sv(bookkeepingPK), ":p": sv(checkpointPrefix)},
		ConsistentRead:            aws.Bool(true)})
	require.NoError(t, err)
	ck := map[string]string{}
	for _, it := range out.Items {
		ck[strings.TrimPrefix(str(it, "sk"), checkpointPrefix)] = str(it, attrSeq)
	}
	return ck
}

// TestReadsWritesInOrder: puts, updates and deletes come out in order as
// changes with increasing local sequence numbers; writes outside iotod get
// the cloud site's origin and a version from updated; iotod's own items
// are skipped; Trim checkpoints in the table.
func TestReadsWritesInOrder(t *testing.T) {
	e := newEnv(t)
	s := e.source(t, nil)
	v1 := pipeline.Version{Wall: time.Now().UnixMilli(), Origin: "dev1"}
	v2 := pipeline.Version{Wall: v1.Wall + 1, Origin: "dev1"}
	vt := pipeline.Version{Wall: v1.Wall + 2, Origin: "dev2"}
	e.put(t, "pk", "device#dev1", "sk", "reading#R1", "_type", "Reading", "temp", "1", "_version", v1.String())
	e.put(t, "pk", "device#dev1", "sk", "reading#R1", "_type", "Reading", "temp", "2", "_version", v2.String())
	e.put(t, "pk", "status#S1", "sk", "status#", "_type", "Status", "updated", "2026-01-02T03:04:05.678Z")
	e.put(t, "pk", "~meta", "sk", "schema", "_type", "~meta")
	e.del(t, "device#dev1", "reading#R1")
	e.put(t, "pk", "device#dev1", "sk", "reading#R9", "_type", TombstoneModel, "model", "Reading", "_version", vt.String())
	e.put(t, "pk", "~stream", "sk", "lease#x", "_type", "~stream")

	select {
	case <-s.Notify():
	case <-time.After(5 * time.Second):
		t.Fatal("no notification of new changes")
	}
	got := read(t, s, 0, 5, 10*time.Second)
	assert.Equal(t, []string{"create:Reading device#dev1", "update:Reading device#dev1", "create:Status status#S1",
		"remove:Reading device#dev1", "remove:Reading device#dev1"}, ids(got))
	for i, c := range got {
		assert.Equal(t, uint64(i+1), c.Seq, "local sequence numbers in read order")
	}
	assert.Equal(t, v1, got[0].Version)
	assert.Equal(t, "dev1", got[1].Origin)
	assert.Equal(t, pipeline.Version{Wall: ms("2026-01-02T03:04:05.678Z"), Origin: testSite}, got[2].Version)
	assert.Equal(t, testSite, got[3].Origin, "a delete outside iotod is the cloud's")
	assert.Positive(t, got[3].Version.Compare(v2), "and beats the deleted version")
	assert.Equal(t, vt, got[4].Version, "a tombstone removes with its version")
	assert.Equal(t, pipeline.Key{PK: "device#dev1", SK: "reading#R9"}, got[4].Key)
	quiet(t, s, 5, 300*time.Millisecond)

	again, err := s.Read(context.Background(), 2, 10)
	require.NoError(t, err)
	require.Len(t, again, 3, "Read returns what is after its argument")
	assert.Equal(t, uint64(3), again[0].Seq)

	st, err := s.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, pipeline.OutboxStats{Depth: 5, First: 1, Last: 5, Oldest: st.Oldest}, st)
	assert.False(t, st.Oldest.IsZero())
	c := s.Counters()
	assert.GreaterOrEqual(t, c.Skipped[string(SkipBookkeeping)], int64(2))
	assert.Equal(t, int64(5), c.Changes)

	require.NoError(t, s.Trim(context.Background(), 3))
	st, _ = s.Stats(context.Background())
	assert.Equal(t, int64(2), st.Depth)
	assert.Equal(t, uint64(4), st.First)
	ck := e.checkpoints(t)
	require.Len(t, ck, 1, "one shard, one checkpoint")
	require.NoError(t, s.Trim(context.Background(), 5))
	ck2 := e.checkpoints(t)
	for id, seq := range ck {
		assert.Greater(t, padSeq(ck2[id]), padSeq(seq), "the checkpoint moves on with the trim")
	}
	st, _ = s.Stats(context.Background())
	assert.Equal(t, pipeline.OutboxStats{Last: 5}, st, "trimmed to empty, Last kept")
}

// TestResumesAfterCheckpoint: a new source on the same table resumes after
// the checkpoint: nothing trimmed comes again, nothing untrimmed is lost.
func TestResumesAfterCheckpoint(t *testing.T) {
	e := newEnv(t)
	a := e.source(t, nil)
	for i := 1; i <= 5; i++ {
		e.thing(t, i, "dev1")
	}
	got := read(t, a, 0, 5, 10*time.Second)
	require.NoError(t, a.Trim(context.Background(), got[2].Seq))
	require.NoError(t, a.Close(context.Background()))
	_, err := a.Read(context.Background(), 0, 10)
	require.ErrorIs(t, err, pipeline.ErrClosed)

	b := e.source(t, nil)
	got = read(t, b, 0, 2, 10*time.Second)
	assert.Equal(t, []string{"create:Thing thing#4", "create:Thing thing#5"}, ids(got))
	e.thing(t, 6, "dev1")
	got = read(t, b, got[1].Seq, 1, 10*time.Second)
	assert.Equal(t, []string{"create:Thing thing#6"}, ids(got))
	quiet(t, b, got[0].Seq, 300*time.Millisecond)
}

// recorder logs the GetRecords calls of several sources by shard.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

type call struct {
	who, shard string
	start, end time.Time
}

// recording wraps a Streams client, telling its calls apart by who.
type recording struct {
	StreamsAPI
	who string
	rec *recorder

	mu     sync.Mutex
	shards map[string]string // iterator → shard
}

func (r *recording) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	out, err := r.StreamsAPI.GetShardIterator(ctx, in, opts...)
	if err == nil {
		r.mu.Lock()
		r.shards[aws.ToString(out.ShardIterator)] = aws.ToString(in.ShardId)
		r.mu.Unlock()
	}
	return out, err
}

func (r *recording) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	r.mu.Lock()
	shard := r.shards[aws.ToString(in.ShardIterator)]
	r.mu.Unlock()
	c := call{who: r.who, shard: shard, start: time.Now()}
	out, err := r.StreamsAPI.GetRecords(ctx, in, opts...)
	c.end = time.Now()
	r.rec.mu.Lock()
	r.rec.calls = append(r.rec.calls, c)
	r.rec.mu.Unlock()
	if err == nil && out.NextShardIterator != nil {
		r.mu.Lock()
		r.shards[aws.ToString(out.NextShardIterator)] = shard
		r.mu.Unlock()
	}
	return out, err
}

// overlaps returns the calls of two workers on one shard that overlap in
// time or interleave.
func (r *recorder) overlaps() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	byShard := map[string][]call{}
	for _, c := range r.calls {
		byShard[c.shard] = append(byShard[c.shard], c)
	}
	var bad []string
	for shard, calls := range byShard {
		sort.Slice(calls, func(i, j int) bool { return calls[i].start.Before(calls[j].start) })
		// Each worker's calls on a shard form one run: no worker comes
		// back after another started, and no call starts before the last
		// one of another worker ended.
		seen := map[string]bool{}
		for i, c := range calls {
			if i > 0 && calls[i-1].who != c.who {
				if seen[c.who] {
					bad = append(bad, fmt.Sprintf("shard %s: %s read again after another worker", shard, c.who))
				}
				if c.start.Before(calls[i-1].end) {
					bad = append(bad, fmt.Sprintf("shard %s: %s and %s read at once", shard, calls[i-1].who, c.who))
				}
			}
			seen[c.who] = true
		}
	}
	return bad
}

func (r *recorder) first(who string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c.who == who {
			return c.start, true
		}
	}
	return time.Time{}, false
}

func (r *recorder) lastEnd(who string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t time.Time
	for _, c := range r.calls {
		if c.who == who && c.end.After(t) {
			t = c.end
		}
	}
	return t
}

// owner waits until exactly one of the sources holds every shard, and
// returns it and the other.
func owner(t *testing.T, a, b *Source) (*Source, *Source) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		oa, ob := a.Owned(), b.Owned()
		for _, id := range oa {
			require.NotContains(t, ob, id, "a shard held by two workers")
		}
		switch {
		case len(oa) > 0 && len(ob) == 0:
			return a, b
		case len(ob) > 0 && len(oa) == 0:
			return b, a
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no single owner: %v, %v", a.Owned(), b.Owned())
	return nil, nil
}

// TestTakeoverAfterWorkerDies: two workers on one table never read a
// shard at once; when the owner dies (no release, no renewal) the other
// takes the shard over once the lease expired and resumes after its
// checkpoint.
func TestTakeoverAfterWorkerDies(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{}
	mk := func(who string) *Source {
		return e.source(t, func(c *Config) {
			c.Worker = who
			c.Streams = &recording{StreamsAPI: e.sc, who: who, rec: rec, shards: map[string]string{}}
		})
	}
	a, b := mk("a"), mk("b")
	x, y := owner(t, a, b)
	whoX, whoY := strings.Split(x.Owner(), "/")[0], strings.Split(y.Owner(), "/")[0]

	for i := 1; i <= 3; i++ {
		e.thing(t, i, "dev1")
	}
	got := read(t, x, 0, 3, 10*time.Second)
	require.NoError(t, x.Trim(context.Background(), got[2].Seq))
	e.thing(t, 4, "dev1")
	e.thing(t, 5, "dev1")
	got = read(t, x, got[2].Seq, 2, 10*time.Second)
	require.NoError(t, x.Trim(context.Background(), got[0].Seq), "thing 4 settled, thing 5 not")
	time.Sleep(2 * x.cfg.LeaseDuration) // y keeps trying meanwhile
	chs, err := y.Read(context.Background(), 0, 10)
	require.NoError(t, err)
	require.Empty(t, ids(chs), "the other worker reads nothing while the owner lives")

	x.kill() // returns once its readers stopped
	killed := time.Now()
	require.False(t, rec.lastEnd(whoX).After(killed), "the dead worker reads no more")
	got = read(t, y, 0, 1, 15*time.Second)
	assert.Equal(t, []string{"create:Thing thing#5"}, ids(got), "the survivor resumes after the checkpoint")
	firstY, ok := rec.first(whoY)
	require.True(t, ok)
	lease, renew := x.cfg.LeaseDuration, x.cfg.RenewInterval
	assert.GreaterOrEqual(t, firstY.Sub(killed), lease-renew-100*time.Millisecond,
		"the shard is taken over only after its lease expired")
	e.thing(t, 6, "dev1")
	got = read(t, y, got[0].Seq, 1, 10*time.Second)
	assert.Equal(t, []string{"create:Thing thing#6"}, ids(got))
	quiet(t, y, got[0].Seq, 300*time.Millisecond)
	assert.Empty(t, rec.overlaps())
	assert.Equal(t, int64(1), y.Counters().LeasesTaken)
}

// TestReleasedAtClose: a worker that closes releases its shards: another
// takes them at once (well within a lease duration) and nothing is lost.
func TestReleasedAtClose(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{}
	mk := func(who string) *Source {
		return e.source(t, func(c *Config) {
			c.Worker = who
			c.LeaseDuration = 20 * time.Second
			c.RenewInterval = 5 * time.Second
			c.Streams = &recording{StreamsAPI: e.sc, who: who, rec: rec, shards: map[string]string{}}
		})
	}
	a, b := mk("a"), mk("b")
	x, y := owner(t, a, b)
	e.thing(t, 1, "dev1")
	e.thing(t, 2, "dev2")
	got := read(t, x, 0, 2, 10*time.Second)
	require.NoError(t, x.Trim(context.Background(), got[0].Seq))
	closed := time.Now()
	require.NoError(t, x.Close(context.Background()))
	got = read(t, y, 0, 1, 5*time.Second)
	assert.Equal(t, []string{"create:Thing thing#2"}, ids(got))
	assert.Equal(t, "dev2", got[0].Origin)
	assert.Less(t, time.Since(closed), 5*time.Second, "taken without waiting for the lease to expire")
	assert.Empty(t, rec.overlaps())
}

// throttling makes the first calls of each kind fail as DynamoDB does
// when throttled.
type throttling struct {
	StreamsAPI
	mu      sync.Mutex
	records int
}

func (f *throttling) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	f.mu.Lock()
	f.records++
	n := f.records
	f.mu.Unlock()
	if n <= 3 {
		return nil, &streamtypes.LimitExceededException{Message: aws.String("throttled by the test")}
	}
	return f.StreamsAPI.GetRecords(ctx, in, opts...)
}

type throttlingTable struct {
	TableAPI
	mu      sync.Mutex
	queries int
}

func (f *throttlingTable) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	f.mu.Lock()
	f.queries++
	n := f.queries
	f.mu.Unlock()
	if n <= 2 {
		return nil, &ddb.ProvisionedThroughputExceededException{Message: aws.String("throttled by the test")}
	}
	return f.TableAPI.Query(ctx, in, opts...)
}

// TestThrottlingIsRetried: throttled calls are retried with backoff and
// counted; the changes still come.
func TestThrottlingIsRetried(t *testing.T) {
	e := newEnv(t)
	s := e.source(t, func(c *Config) {
		c.Streams = &throttling{StreamsAPI: e.sc}
		c.Client = &throttlingTable{TableAPI: e.c}
	})
	e.thing(t, 1, "dev1")
	got := read(t, s, 0, 1, 10*time.Second)
	assert.Equal(t, []string{"create:Thing thing#1"}, ids(got))
	c := s.Counters()
	assert.GreaterOrEqual(t, c.Throttles, int64(5))
	assert.GreaterOrEqual(t, c.Retries, int64(5))
}

// TestTableFaults: a missing table, a table without a stream and a stream
// of the wrong view type are permanent errors naming the table.
func TestTableFaults(t *testing.T) {
	c := dynamotest.Client(t)
	sc := dynamotest.StreamsClient(t)
	ctx := context.Background()
	plain := dynamotest.Table(t, c, "nostream")
	keys := dynamotest.UniqueName("keysonly")
	in := dynamotest.TableInput(keys, true)
	in.StreamSpecification.StreamViewType = ddb.StreamViewTypeKeysOnly
	_, err := c.CreateTable(ctx, in)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(keys)}) })
	require.NoError(t, dynamotest.WaitActive(ctx, c, keys))
	for _, tc := range []struct{ table, want string }{
		{"missing-" + dynamotest.UniqueName("t"), "describe"},
		{plain, "has no stream"},
		{keys, "NEW_AND_OLD_IMAGES"},
	} {
		s, err := New(fast(Config{Client: c, Streams: sc, Table: tc.table, Site: testSite}))
		require.NoError(t, err)
		err = s.Start(ctx)
		require.Error(t, err, tc.table)
		assert.Contains(t, err.Error(), tc.table)
		assert.Contains(t, err.Error(), tc.want)
		assert.True(t, pipeline.IsPermanent(err), "%v", err)
		_, err = s.Read(ctx, 0, 10)
		require.Error(t, err, "Read starts the source and says why it cannot")
		assert.Contains(t, err.Error(), tc.want)
		chs, err := s.Read(ctx, 0, 10)
		require.NoError(t, err, "but not at every poll")
		require.Empty(t, chs)
		require.NoError(t, s.Close(ctx))
	}
}

func TestConfigFaults(t *testing.T) {
	_, err := New(Config{Table: "x", Site: "bad site", RenewInterval: time.Hour})
	require.Error(t, err)
	for _, want := range []string{"Client", "Streams", "Table", "Site", "RenewInterval"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.True(t, errors.Is(err, pipeline.ErrInvalid))
}

// TestForgetsVanishedShards: the lease and checkpoint items of a shard the
// stream no longer lists are deleted; those of another stream are kept
// until they are two retentions old (a worker may still read it).
func TestForgetsVanishedShards(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UnixMilli()
	put := func(sk, stream string, at int64, extra ...string) {
		kv := append([]string{"pk", bookkeepingPK, "sk", sk, "_type", bookkeepingType, attrStream, stream, attrOwner, ""}, extra...)
		item := map[string]ddb.AttributeValue{attrAt: nv(at), attrVer: nv(3)}
		for i := 0; i < len(kv); i += 2 {
			item[kv[i]] = sv(kv[i+1])
		}
		_, err := e.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item})
		require.NoError(t, err)
	}
	out, err := e.c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(e.table)})
	require.NoError(t, err)
	arn := aws.ToString(out.Table.LatestStreamArn)
	put("checkpoint#shardId-vanished", arn, now, attrSeq, "5")
	put("lease#shardId-vanished", arn, now)
	put("checkpoint#shardId-other-stream", arn+"-old", now, attrSeq, "5")
	put("checkpoint#shardId-old-stream", arn+"-old", now-49*3600*1000, attrSeq, "5")

	s := e.source(t, nil)
	require.Eventually(t, func() bool { return len(s.Owned()) == 1 }, 5*time.Second, 20*time.Millisecond)
	var left map[string]string
	require.Eventually(t, func() bool {
		left = e.checkpoints(t)
		_, vanished := left["shardId-vanished"]
		_, old := left["shardId-old-stream"]
		return !vanished && !old
	}, 5*time.Second, 50*time.Millisecond, "checkpoints left: %v", left)
	assert.Contains(t, left, "shardId-other-stream", "another stream's recent checkpoint is kept")
	got, err := e.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true),
		Key: map[string]ddb.AttributeValue{"pk": sv(bookkeepingPK), "sk": sv("lease#shardId-vanished")}})
	require.NoError(t, err)
	assert.Empty(t, got.Item, "the vanished shard's lease is deleted")
}
