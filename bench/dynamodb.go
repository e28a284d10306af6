//go:build !device

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/dynamodb"
	"github.com/iotod/iotod/schema"
)

// DynamoDBOptions configure `iotod bench dynamodb`.
type DynamoDBOptions struct {
	// Endpoint is the DynamoDB endpoint (DynamoDB Local's address).
	Endpoint string
	// Region the clients sign for (us-east-1).
	Region string
	// Changes applied per run (5,000).
	Changes int
	// Concurrency is the number of concurrent appliers, each on its own
	// keys, for iotod and for the baseline (8).
	Concurrency int
	// Runs per figure; the median is reported (3).
	Runs int
	// Latency is how many changes are timed from the table to the stream
	// source's outbox (200); 0 skips the section.
	Latency int
	// Rate is the pace of those timed writes, per second (50).
	Rate int
	// Dir is a folder for the device store the changes are made in
	// (default: a new temporary folder).
	Dir string
	Out io.Writer
}

func (o *DynamoDBOptions) defaults() {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Changes == 0 {
		o.Changes = 5_000
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.Runs == 0 {
		o.Runs = 3
	}
	if o.Rate == 0 {
		o.Rate = 50
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
}

// batchWriteSize is BatchWriteItem's limit of items per call.
const batchWriteSize = 25

// RunDynamoDB measures P6: device changes applied through db.Apply on a
// cloud database over the dynamodb store (conditional, last-writer-wins
// writes, in chunks of the store's MaxWritesPerUpdate) against a raw
// BatchWriteItem loop of the same items at the same concurrency on the
// same endpoint, each on a fresh table, in the same run. Then, unless
// o.Latency is 0, the latency from a write into the table to the change
// read from the stream source's outbox.
func RunDynamoDB(ctx context.Context, o DynamoDBOptions) error {
	o.defaults()
	if o.Endpoint == "" {
		return fmt.Errorf("%w: bench dynamodb: no endpoint (start DynamoDB Local: scripts/services.sh start)", pipeline.ErrInvalid)
	}
	sch, err := schema.ParseBytes([]byte(benchSchema), "json", "bench")
	if err != nil {
		return err
	}
	changes, err := deviceChanges(ctx, o.Dir, o.Changes)
	if err != nil {
		return fmt.Errorf("making the device changes: %w", err)
	}
	client := rawDynamoClient(o)
	fmt.Fprintf(o.Out, "iotod bench dynamodb: %s/%s, %d CPUs, Go %s, endpoint %s, %d changes, %d appliers, median of %d runs\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), o.Endpoint, o.Changes, o.Concurrency, o.Runs)

	prefix := fmt.Sprintf("iotod-bench-%d", time.Now().UnixNano())
	var plugin, raw, ratios []float64
	var items []map[string]types.AttributeValue
	for r := 0; r < o.Runs; r++ {
		measurePlugin := func() (float64, error) {
			table := fmt.Sprintf("%s-%d-plugin", prefix, r)
			defer dropBenchTable(client, table)
			rate, err := pluginApply(ctx, sch, table, changes, o)
			if err == nil && items == nil {
				// The baseline writes exactly what the store wrote.
				items, err = scanModel(ctx, client, table, "Bench")
				if err == nil && len(items) != len(changes) {
					err = fmt.Errorf("table %s holds %d Bench items after applying %d changes", table, len(items), len(changes))
				}
			}
			if err != nil {
				return 0, fmt.Errorf("P6 iotod, run %d: %w", r+1, err)
			}
			return rate, nil
		}
		measureRaw := func() (float64, error) {
			table := fmt.Sprintf("%s-%d-raw", prefix, r)
			defer dropBenchTable(client, table)
			rate, err := rawBatchWrites(ctx, sch, client, table, items, o)
			if err != nil {
				return 0, fmt.Errorf("P6 baseline, run %d: %w", r+1, err)
			}
			return rate, nil
		}
		// DynamoDB Local slows from one table to the next: the order
		// alternates so neither side always gets the fresher endpoint (the
		// first run must apply first, to have the items).
		p, b, err := alternate(r, measurePlugin, measureRaw)
		if err != nil {
			return err
		}
		plugin, raw, ratios = append(plugin, p), append(raw, b), append(ratios, p/b)
	}
	fmt.Fprintf(o.Out, "\nP6 cloud apply into DynamoDB (~200-byte items, batches of %d, %d appliers on distinct keys, a fresh table per run)\n", applyBatch, o.Concurrency)
	fmt.Fprintf(o.Out, "  iotod db.Apply, dynamodb store     %9.0f changes/s  (runs: %s)\n", median(plugin), runList(plugin, "%.0f"))
	fmt.Fprintf(o.Out, "  raw BatchWriteItem, %d items/call  %9.0f items/s    (runs: %s)\n", batchWriteSize, median(raw), runList(raw, "%.0f"))
	fmt.Fprintf(o.Out, "  ratio                              %9.2fx  (median of each run's ratio; runs: %s; bar: >= 0.9x)\n", median(ratios), runList(ratios, "%.2f"))

	if o.Latency > 0 {
		dist, err := streamLatency(ctx, sch, client, fmt.Sprintf("%s-latency", prefix), changes, o)
		if err != nil {
			return fmt.Errorf("stream latency: %w", err)
		}
		fmt.Fprintf(o.Out, "\nStream to device, the part that is ours (applied into the table -> stream source -> Outbox().Read), %d changes at %d/s\n", o.Latency, o.Rate)
		fmt.Fprintf(o.Out, "  latency                            %s (n %d)\n", dist, dist.N)
	}
	return nil
}

func rawDynamoClient(o DynamoDBOptions) *awsdynamodb.Client {
	return awsdynamodb.New(awsdynamodb.Options{
		BaseEndpoint: aws.String(o.Endpoint),
		Region:       o.Region,
		// DynamoDB Local accepts any credentials.
		Credentials: credentials.NewStaticCredentialsProvider("iotod", "iotod", ""),
		// DynamoDB Local sends a wrong CRC32 on error responses.
		DisableValidateResponseChecksum: true,
	})
}

func storeConfig(o DynamoDBOptions, table string, stream bool) dynamodb.Config {
	cfg := dynamodb.NewDefaultConfig()
	cfg.Table, cfg.Region, cfg.Endpoint = table, o.Region, o.Endpoint
	cfg.AccessKeyID, cfg.SecretAccessKey = "iotod", "iotod"
	cfg.CreateTable, cfg.Stream = true, stream
	return cfg
}

// cloudDB opens a cloud database on a fresh table created by the store,
// with its stream source on, as a cloud worker runs it.
func cloudDB(ctx context.Context, sch *schema.Schema, table string, o DynamoDBOptions) (*db.DB, *dynamodb.Store, error) {
	st, err := dynamodb.Open(ctx, storeConfig(o, table, true), sch, nil, dynamodb.WithSite("cloud"))
	if err != nil {
		return nil, nil, err
	}
	d, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "cloud", Side: schema.SideCloud})
	if err != nil {
		return nil, nil, errors.Join(err, st.Close(ctx))
	}
	return d, st, nil
}

// shares splits n into c contiguous ranges.
func shares(n, c int) [][2]int {
	c = max(1, min(c, n))
	out := make([][2]int, c)
	for i := range out {
		out[i] = [2]int{i * n / c, (i + 1) * n / c}
	}
	return out
}

// parallel runs fn on each share at once and returns the elapsed time and
// the first error.
func parallel(ctx context.Context, n, c int, fn func(ctx context.Context, lo, hi int) error) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	start := time.Now()
	for _, sh := range shares(n, c) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx, sh[0], sh[1]); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return time.Since(start), first
}

// applyAll applies changes to cloud as devices' changes arrive: by
// appliers at once, each on its own share, in batches of batch; every
// change must apply. It returns the time it took.
func applyAll(ctx context.Context, cloud *db.DB, changes []pipeline.Change, appliers, batch int) (time.Duration, error) {
	return parallel(ctx, len(changes), appliers, func(ctx context.Context, lo, hi int) error {
		for i := lo; i < hi; i += batch {
			part := changes[i:min(i+batch, hi)]
			res, err := cloud.Apply(ctx, db.Source{}, part)
			if err != nil {
				return err
			}
			for k, r := range res {
				if r.Err != nil || !r.Applied {
					return fmt.Errorf("change %s not applied: %v", part[k].Key, r.Err)
				}
			}
		}
		return nil
	})
}

// pluginApply applies the changes through db.Apply on a fresh table,
// o.Concurrency appliers each on its own share in batches of applyBatch.
// Opening the table is not timed.
func pluginApply(ctx context.Context, sch *schema.Schema, table string, changes []pipeline.Change, o DynamoDBOptions) (float64, error) {
	cloud, st, err := cloudDB(ctx, sch, table, o)
	if err != nil {
		return 0, err
	}
	defer st.Close(ctx)
	elapsed, err := applyAll(ctx, cloud, changes, o.Concurrency, applyBatch)
	if err != nil {
		return 0, err
	}
	return float64(len(changes)) / elapsed.Seconds(), nil
}

// rawBatchWrites writes items with unconditional BatchWriteItem calls of
// batchWriteSize items (unprocessed items sent again) on a fresh table of
// the same definition, o.Concurrency writers each on its own share.
func rawBatchWrites(ctx context.Context, sch *schema.Schema, client *awsdynamodb.Client, table string, items []map[string]types.AttributeValue, o DynamoDBOptions) (float64, error) {
	// The store creates the table as it does for iotod (keys, stream,
	// TTL), then steps aside.
	st, err := dynamodb.Open(ctx, storeConfig(o, table, false), sch, nil)
	if err != nil {
		return 0, err
	}
	if err := st.Close(ctx); err != nil {
		return 0, err
	}
	elapsed, err := parallel(ctx, len(items), o.Concurrency, func(ctx context.Context, lo, hi int) error {
		for i := lo; i < hi; i += batchWriteSize {
			reqs := make([]types.WriteRequest, 0, batchWriteSize)
			for _, it := range items[i:min(i+batchWriteSize, hi)] {
				reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
			}
			pending := map[string][]types.WriteRequest{table: reqs}
			for attempt := 0; len(pending[table]) > 0; attempt++ {
				if attempt > 0 {
					if attempt > 20 {
						return fmt.Errorf("BatchWriteItem left %d items unprocessed after %d attempts", len(pending[table]), attempt)
					}
					time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
				}
				out, err := client.BatchWriteItem(ctx, &awsdynamodb.BatchWriteItemInput{RequestItems: pending})
				if err != nil {
					return err
				}
				pending = out.UnprocessedItems
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return float64(len(items)) / elapsed.Seconds(), nil
}

// scanModel reads the items of one model (by the _type attribute) from a
// table: what the store wrote, bookkeeping items left out.
func scanModel(ctx context.Context, client *awsdynamodb.Client, table, model string) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	var start map[string]types.AttributeValue
	for {
		out, err := client.Scan(ctx, &awsdynamodb.ScanInput{TableName: aws.String(table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, err
		}
		for _, it := range out.Items {
			if t, ok := it["_type"].(*types.AttributeValueMemberS); ok && t.Value == model {
				items = append(items, it)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		start = out.LastEvaluatedKey
	}
}

// dropBenchTable deletes a benchmark table, so stream records do not pile
// up in DynamoDB Local.
func dropBenchTable(client *awsdynamodb.Client, table string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = client.DeleteTable(ctx, &awsdynamodb.DeleteTableInput{TableName: aws.String(table)})
}

// streamLatency applies o.Latency changes one at a time at o.Rate on a
// fresh table and times each from the moment its write returned to the
// moment its change came out of the stream source's Outbox().Read: the
// part of stream-to-device latency that is the dynamodb store's (the
// stream's own delay included; the down pipeline and transport not).
func streamLatency(ctx context.Context, sch *schema.Schema, client *awsdynamodb.Client, table string, changes []pipeline.Change, o DynamoDBOptions) (Dist, error) {
	defer dropBenchTable(client, table)
	cloud, st, err := cloudDB(ctx, sch, table, o)
	if err != nil {
		return Dist{}, err
	}
	defer st.Close(ctx)
	n := min(o.Latency, len(changes))
	var mu sync.Mutex
	written := make(map[pipeline.Key]time.Time, n)
	read := make(map[pipeline.Key]time.Time, n)
	done := make(chan struct{})
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	readErr := make(chan error, 1)
	go func() { // the reader, as a down pipeline reads the outbox
		out := st.Outbox()
		var cursor uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			cs, err := out.Read(rctx, cursor, applyBatch)
			if err != nil {
				readErr <- err
				return
			}
			now := time.Now()
			if len(cs) > 0 {
				mu.Lock()
				for _, c := range cs {
					if c.Model == "Bench" {
						if _, ok := read[c.Key]; !ok {
							read[c.Key] = now
						}
					}
				}
				got := len(read)
				mu.Unlock()
				cursor = cs[len(cs)-1].Seq
				if err := out.Trim(rctx, cursor); err != nil {
					readErr <- err
					return
				}
				if got >= n {
					close(done)
					return
				}
				continue
			}
			select {
			case <-rctx.Done():
				readErr <- rctx.Err()
				return
			case <-out.Notify():
			case <-tick.C:
			}
		}
	}()
	pace := time.Second / time.Duration(o.Rate)
	next := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(next))
		next = next.Add(pace)
		res, err := cloud.Apply(ctx, db.Source{}, changes[i:i+1])
		if err != nil {
			return Dist{}, err
		}
		if res[0].Err != nil || !res[0].Applied {
			return Dist{}, fmt.Errorf("change %s not applied: %v", changes[i].Key, res[0].Err)
		}
		mu.Lock()
		written[changes[i].Key] = time.Now()
		mu.Unlock()
	}
	select {
	case <-done:
	case err := <-readErr:
		return Dist{}, err
	case <-time.After(60 * time.Second):
		mu.Lock()
		got := len(read)
		mu.Unlock()
		return Dist{}, fmt.Errorf("%d of %d changes came out of the stream within 60s", got, n)
	}
	var l latencies
	mu.Lock()
	defer mu.Unlock()
	for k, w := range written {
		l.add([]time.Duration{max(0, read[k].Sub(w))})
	}
	return l.dist(), nil
}
