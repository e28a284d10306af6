package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
)

// DBOptions configure `iotod bench db`.
type DBOptions struct {
	// Dir is where the stores live (fresh subfolders per run).
	Dir string
	// Writers is the number of concurrent writers for P1 and P2 (64).
	Writers int
	// Duration is how long each write run lasts (3s).
	Duration time.Duration
	// Runs is how many times each write figure is measured; the median is
	// reported (3).
	Runs int
	// ReadItems, when set and ReadSizes is not, is the one size P9 loads.
	ReadItems int
	// ReadSizes are the store sizes P9 loads and reads (100,000 and
	// 1,000,000 items).
	ReadSizes []int
	// Readers are the numbers of concurrent readers P9 measures (1 and 2).
	Readers []int
	// ReadCacheBytes sizes the db's read cache (0: db's default, <0: none).
	ReadCacheBytes int64
	// Store is the device store measured: "badger" (default) or
	// "sqlite", each beside its own raw engine.
	Store string
	// Only runs one part: "writes" (P1, P2) or "reads" (P9); "" runs both.
	Only string
	// Out receives the report.
	Out io.Writer
	// JSON prints the figures as one JSON document on Out instead of the
	// text report.
	JSON bool

	report *DBReport
	text   io.Writer // the text report: Out, or nowhere with JSON
}

// DBReport is `iotod bench db --json`: every figure of the text report.
type DBReport struct {
	Machine string    `json:"machine"`
	Writers int       `json:"writers"`
	Runs    int       `json:"runs"`
	P1      *P1Report `json:"p1,omitempty"`
	P2      *P2Report `json:"p2,omitempty"`
	// P9 has one entry per store size and number of readers.
	P9 []P9Report `json:"p9,omitempty"`
}

// P1Report is P1: durable creates beside raw badger with SyncWrites.
type P1Report struct {
	Rate         float64 `json:"rate"`
	Latency      Dist    `json:"latency"`
	PeakAnonRSS  int64   `json:"peak_anon_rss"`
	Baseline     float64 `json:"raw_syncwrites_rate"`
	BaselineDist Dist    `json:"raw_syncwrites_latency"`
}

// P2Report is P2: async creates beside raw badger's batched writes and
// its one-transaction-per-create ceiling.
type P2Report struct {
	Rate        float64 `json:"rate"`
	RawBatched  float64 `json:"raw_batched_keys_rate"`
	RawPerWrite float64 `json:"raw_txn_per_create_rate"`
}

// P9Report is P9 at one store size and number of readers.
type P9Report struct {
	Items      int        `json:"items"`
	Readers    int        `json:"readers"`
	CacheBytes int64      `json:"read_cache_bytes"`
	Get        ReadFigure `json:"get"`
	RawGet     ReadFigure `json:"raw_get"`
	Find       ReadFigure `json:"find"`
	FindShared ReadFigure `json:"find_shared"`
	RawScan    ReadFigure `json:"raw_scan"`
	Memory     *P9Memory  `json:"memory,omitempty"`
}

// ReadFigure is a median rate with its median latencies.
type ReadFigure struct {
	Rate float64       `json:"rate"`
	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
}

// P9Memory is the heap and resident set around a P9 load.
type P9Memory struct {
	HeapBefore int64 `json:"heap_before"`
	HeapAfter  int64 `json:"heap_after_load"`
	HeapReads  int64 `json:"heap_after_reads"`
	AnonBefore int64 `json:"anon_rss_before"`
	AnonAfter  int64 `json:"anon_rss_after_load"`
}

func (o *DBOptions) defaults() {
	if o.Writers == 0 {
		o.Writers = 64
	}
	if o.Duration == 0 {
		o.Duration = 3 * time.Second
	}
	if o.Runs == 0 {
		o.Runs = 3
	}
	if len(o.ReadSizes) == 0 {
		o.ReadSizes = []int{100_000, 1_000_000}
		if o.ReadItems > 0 {
			o.ReadSizes = []int{o.ReadItems}
		}
	}
	if len(o.Readers) == 0 {
		o.Readers = []int{1, 2}
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	o.text = o.Out
	if o.JSON {
		o.text = io.Discard
	}
	o.report = &DBReport{Machine: fmt.Sprintf("%s/%s, %d CPUs, Go %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()), Writers: o.Writers, Runs: o.Runs}
}

// benchSchema has one model that replicates up, so every write also
// writes its outbox change.
const benchSchema = `{
  "format": "onetable:1.1.0", "version": "1.0.0", "params": {"isoDates": true, "timestamps": true},
  "indexes": {"primary": {"hash": "pk", "sort": "sk"}},
  "models": {"Bench": {
    "pk": {"type": "string", "value": "bench#${dev}"},
    "sk": {"type": "string", "value": "bench#${id}"},
    "dev": {"type": "string", "required": true},
    "id": {"type": "string", "required": true},
    "payload": {"type": "string"}
  }},
  "process": {"Bench": {"sync": "up"}}
}`

// payload makes a given item of about 200 bytes of JSON.
var payload = strings.Repeat("p", 160)

type iotodDB struct {
	db    *db.DB
	store pipeline.Store
}

func openIotod(ctx context.Context, store, dir, durability string) (*iotodDB, error) {
	return openIotodCache(ctx, store, dir, durability, 0)
}

// storeName is the store's type name ("" is badger).
func storeName(store string) string {
	if store == "" {
		return badger.TypeName
	}
	return store
}

// openIotodCache opens the bench store with a read cache of cacheBytes
// (0: the db's default).
func openIotodCache(ctx context.Context, store, dir, durability string, cacheBytes int64) (*iotodDB, error) {
	sch, err := schema.ParseBytes([]byte(benchSchema), "json", "bench")
	if err != nil {
		return nil, err
	}
	var st pipeline.Store
	switch storeName(store) {
	case badger.TypeName:
		cfg := badger.NewDefaultConfig()
		cfg.Path, cfg.Durability = dir, durability
		st, err = badger.Open(ctx, cfg, nil)
	case "sqlite": // raw_sqlite.go, or raw_nosqlite.go in a 64-bit device build
		st, err = openSQLiteStore(ctx, filepath.Join(dir, "iotod.db"), durability)
	default:
		err = fmt.Errorf("bench db: store %q: want badger or sqlite", store)
	}
	if err != nil {
		return nil, err
	}
	d, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "bench", ReadCacheBytes: cacheBytes})
	if err != nil {
		_ = st.Close(ctx)
		return nil, err
	}
	return &iotodDB{db: d, store: st}, nil
}

func (b *iotodDB) close(ctx context.Context) { _ = b.store.Close(ctx) }

func benchItem(dev string, id int) db.Item {
	return db.Item{"dev": dev, "id": fmt.Sprintf("%010d", id), "payload": payload}
}

// iotodWrites measures concurrent creates through the db API.
func iotodWrites(ctx context.Context, dir, durability string, o DBOptions) (float64, Dist, int64, error) {
	b, err := openIotod(ctx, o.Store, dir, durability)
	if err != nil {
		return 0, Dist{}, 0, err
	}
	defer b.close(ctx)
	stop := make(chan struct{})
	peak := make(chan int64)
	go func() { // sample the resident set while the load runs
		var top int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				top = max(top, anonRSSBytes())
			case <-stop:
				peak <- top
				return
			}
		}
	}()
	rate, dist, err := runWriters(ctx, o.Writers, o.Duration, func(w, i int) error {
		_, err := b.db.Create(ctx, "Bench", benchItem(fmt.Sprintf("w%d", w), i), nil)
		return err
	})
	close(stop)
	return rate, dist, <-peak, err
}

// RunDB measures P1, P2 and P9 and prints each beside its baseline.
func RunDB(ctx context.Context, o DBOptions) error {
	o.defaults()
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	if err := runDB(ctx, &o); err != nil {
		return err
	}
	if o.JSON {
		return printJSON(o.Out, o.report)
	}
	return nil
}

func runDB(ctx context.Context, o *DBOptions) error {
	w := o.text
	fmt.Fprintf(w, "iotod bench db: %s/%s, %d CPUs, Go %s, store %s, %d writers, %s per run, median of %d runs\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), storeName(o.Store), o.Writers, o.Duration, o.Runs)
	value := make([]byte, 200)
	run := 0
	fresh := func(name string) string {
		run++
		return filepath.Join(o.Dir, fmt.Sprintf("%s-%d", name, run))
	}
	switch o.Only {
	case "reads":
		return readBench(ctx, *o, fresh, value)
	case "", "writes":
	default:
		return fmt.Errorf("bench db: only %q: want writes or reads", o.Only)
	}

	base, err := baselineFor(o.Store)
	if err != nil {
		return err
	}
	var p1, p1base, p2, p2base, p2txn []float64
	var p1dist, basedist Dist
	var p1rss int64
	for r := 0; r < o.Runs; r++ {
		rate, dist, rss, err := iotodWrites(ctx, fresh("p1"), badger.DurabilitySync, *o)
		if err != nil {
			return fmt.Errorf("P1 iotod: %w", err)
		}
		p1, p1dist = append(p1, rate), worse(p1dist, dist)
		if r == 0 {
			p1rss = rss // later runs inherit the heap of earlier ones
		}
		raw, bdist, err := base.singleWrites(ctx, fresh("p1raw"), true, *o, value)
		if err != nil {
			return fmt.Errorf("P1 baseline: %w", err)
		}
		p1base, basedist = append(p1base, raw), worse(basedist, bdist)
		rate, _, _, err = iotodWrites(ctx, fresh("p2"), badger.DurabilityAsync, *o)
		if err != nil {
			return fmt.Errorf("P2 iotod: %w", err)
		}
		p2 = append(p2, rate)
		raw, err = base.batchedWrites(ctx, fresh("p2raw"), *o, value)
		if err != nil {
			return fmt.Errorf("P2 baseline: %w", err)
		}
		p2base = append(p2base, raw)
		raw, err = base.createTxns(ctx, fresh("p2txn"), *o, value)
		if err != nil {
			return fmt.Errorf("P2 transaction baseline: %w", err)
		}
		p2txn = append(p2txn, raw)
	}
	o.report.P1 = &P1Report{Rate: median(p1), Latency: p1dist, PeakAnonRSS: p1rss, Baseline: median(p1base), BaselineDist: basedist}
	o.report.P2 = &P2Report{Rate: median(p2), RawBatched: median(p2base), RawPerWrite: median(p2txn)}
	fmt.Fprintf(w, "\nP1 durable writes (durability: sync, %d writers, ~200-byte items, outbox included)\n", o.Writers)
	fmt.Fprintf(w, "  iotod                      %9.0f items/s  %s (worst of the runs, n all runs)\n  memory under load          %s anonymous RSS (peak, first run, whole process)\n", median(p1), p1dist, mib(p1rss))
	fmt.Fprintf(w, "  %-26s %9.0f writes/s %s\n", base.name+", "+base.syncWord+",", median(p1base), basedist)
	fmt.Fprintf(w, "    one txn per write\n  ratio                      %9.1fx   (bar: >= 20,000/s, >= 10x, p99 <= 25ms, max <= 50ms)\n", median(p1)/median(p1base))
	fmt.Fprintf(w, "\nP2 async writes (durability: async, %d writers)\n", o.Writers)
	fmt.Fprintf(w, "  iotod                      %9.0f items/s\n", median(p2))
	fmt.Fprintf(w, "  %-26s %9.0f keys/s (one writer, no %s)\n", base.name+", 1000-key", median(p2base), base.syncWord)
	fmt.Fprintf(w, "    batches\n  ratio                      %9.2fx   (bar: >= 100,000/s: %s)\n", median(p2)/median(p2base), verdict(median(p2) >= 100_000))
	fmt.Fprintf(w, "  %-26s %9.0f creates/s (%d writers, no %s; a get and 2 sets each)\n", base.name+", one txn per", median(p2txn), o.Writers, base.syncWord)
	fmt.Fprintf(w, "    create                   (the ceiling of a transaction per write)\n  ratio                      %9.2fx\n", median(p2)/median(p2txn))
	if o.Only == "writes" {
		return nil
	}
	debug.FreeOSMemory()
	return readBench(ctx, *o, fresh, value)
}

// worse keeps the distribution with the higher tail.
// worse is the worse of two runs' latencies: the higher p50 and p99 of
// the two, and the true maximum of both (the bar is on every write of
// every run).
func worse(a, b Dist) Dist {
	return Dist{N: a.N + b.N, P50: max(a.P50, b.P50), P99: max(a.P99, b.P99), Max: max(a.Max, b.Max)}
}
