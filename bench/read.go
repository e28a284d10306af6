package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

const partition = 100 // items per hash key: one prefix find returns them all

// P9's bars (../shared/design/PERFORMANCE.md).
const (
	getBarSmall  = 300_000 // gets/s at 100k items
	getBarLarge  = 200_000 // gets/s at 1M items
	findBarP50   = 20 * time.Microsecond
	findBarP99   = time.Millisecond
	memBarPerItm = 512 // bytes of memory per stored item
)

// readFigures is one measured read: a rate and its latencies per run.
type readFigures struct {
	rates []float64
	p50s  []float64
	p99s  []float64
}

func (f *readFigures) add(rate float64, d Dist) {
	f.rates = append(f.rates, rate)
	f.p50s = append(f.p50s, float64(d.P50))
	f.p99s = append(f.p99s, float64(d.P99))
}

func (f *readFigures) rate() float64            { return median(f.rates) }
func (f *readFigures) p50() time.Duration       { return time.Duration(median(f.p50s)) }
func (f *readFigures) p99() time.Duration       { return time.Duration(median(f.p99s)) }
func (f *readFigures) spread() (lo, hi float64) { return slices.Min(f.rates), slices.Max(f.rates) }

func (f *readFigures) figure() ReadFigure {
	return ReadFigure{Rate: f.rate(), P50: f.p50(), P99: f.p99()}
}

func (f *readFigures) String() string {
	lo, hi := f.spread()
	return fmt.Sprintf("%9.0f/s  p50 %-8s p99 %-8s (runs %.0f..%.0f)", f.rate(), round(f.p50()), round(f.p99()), lo, hi)
}

// heapBytes is the live heap after a collection.
func heapBytes() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// partKey and idKey name item j's partition and id, the same way for iotod
// and for raw badger.
func partKey(j int) string { return "p" + strconv.Itoa(j/partition) }
func idKey(j int) string   { return fmt.Sprintf("%010d", j) }

// readBench measures P9 for each size of o.ReadSizes: gets/s and 100-item
// prefix finds with each number of readers of o.Readers, beside raw badger
// gets and 100-key scans of the same keys measured in the same run (the
// two alternate, o.Runs times), and memory per stored item.
func readBench(ctx context.Context, o DBOptions, fresh func(string) string, value []byte) error {
	for _, n := range o.ReadSizes {
		if err := readSize(ctx, fresh("p9"), fresh("p9raw"), n, o, value); err != nil {
			return err
		}
		debug.FreeOSMemory()
	}
	return nil
}

func readSize(ctx context.Context, dir, rawDir string, n int, o DBOptions, value []byte) error {
	w := o.text
	n = max(n, partition)
	heapBefore, anonBefore := heapBytes(), anonRSSBytes()
	cacheBytes := o.ReadCacheBytes
	if cacheBytes == 0 {
		cacheBytes = max(int64(n)*holdBytesPerItem, 64<<20) // small stores: room for a partition in every shard
	}
	b, err := openIotodCache(ctx, o.Store, dir, "async", cacheBytes)
	if err != nil {
		return err
	}
	defer b.close(ctx)
	start := time.Now()
	const batch = 1000
	for i := 0; i < n; i += batch {
		ops := make([]db.WriteOp, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			ops = append(ops, db.WriteOp{Op: pipeline.OpCreate, Model: "Bench", Item: benchItem(partKey(j), j)})
		}
		if _, err := b.db.Transact(ctx, ops); err != nil {
			return fmt.Errorf("P9 load: %w", err)
		}
		if err := b.store.Outbox().Trim(ctx, uint64(min(i+batch, n))); err != nil {
			return fmt.Errorf("P9 load trim: %w", err)
		}
	}
	load := time.Since(start)
	heapAfter, anonAfter := heapBytes(), anonRSSBytes()

	base, err := baselineFor(o.Store)
	if err != nil {
		return err
	}
	raw, err := base.loadReads(rawDir, n, value)
	if err != nil {
		return err
	}
	defer raw.close()

	iotodGet := func(_, _ int) error {
		j := rand.IntN(n)
		_, err := b.db.Get(ctx, "Bench", db.Item{"dev": partKey(j), "id": idKey(j)}, nil)
		return err
	}
	rawGet := func(_, _ int) error { return raw.get(rand.IntN(n)) }
	findPart := func(p int, shared bool) error {
		res, err := b.db.Find(ctx, "Bench", db.Item{"dev": partKey(p * partition)}, &db.Params{Limit: partition, Shared: shared})
		if err == nil && len(res.Items) != partition {
			err = fmt.Errorf("find returned %d items, want %d", len(res.Items), partition)
		}
		return err
	}
	iotodFind := func(_, _ int) error { return findPart(rand.IntN(n/partition), false) }
	iotodFindShared := func(_, _ int) error { return findPart(rand.IntN(n/partition), true) }
	rawFind := func(_, _ int) error { return raw.scan(rand.IntN(n / partition)) }

	getBar := getBarSmall
	if n > 100_000 {
		getBar = getBarLarge
	}
	fmt.Fprintf(w, "\nP9 reads over %d items (loaded in %s; %s per run, median of %d runs, iotod and %s alternating; store %s)\n",
		n, load.Round(time.Millisecond), o.Duration, o.Runs, base.name, storeName(o.Store))
	cold, err := firstReads(ctx, b.db, n, findPart)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  read cache %s%s; first read of every item and partition (from the store, filling the cache): %s\n",
		mib(max(cacheBytes, 0)), map[bool]string{true: " (sized to hold the store)"}[o.ReadCacheBytes == 0], cold)
	for _, readers := range o.Readers {
		var get, rawG, find, findS, rawF readFigures
		for r := 0; r < o.Runs; r++ {
			for _, m := range []struct {
				f  *readFigures
				op func(int, int) error
				at string
			}{{&get, iotodGet, "gets"}, {&rawG, rawGet, "raw gets"}, {&find, iotodFind, "finds"}, {&findS, iotodFindShared, "shared finds"}, {&rawF, rawFind, "raw finds"}} {
				rate, dist, err := runWriters(ctx, readers, o.Duration, m.op)
				if err != nil {
					return fmt.Errorf("P9 %s: %w", m.at, err)
				}
				m.f.add(rate, dist)
			}
		}
		o.report.P9 = append(o.report.P9, P9Report{Items: n, Readers: readers, CacheBytes: cacheBytes,
			Get: get.figure(), RawGet: rawG.figure(), Find: find.figure(), FindShared: findS.figure(), RawScan: rawF.figure()})
		fmt.Fprintf(w, "  %d reader(s)\n", readers)
		fmt.Fprintf(w, "    iotod get                %s\n", &get)
		fmt.Fprintf(w, "    %-24s %s\n", base.name+" get", &rawG)
		fmt.Fprintf(w, "    ratio                    %9.2fx   (bar: >= %d gets/s: %s)\n", get.rate()/rawG.rate(), getBar, verdict(get.rate() >= float64(getBar)))
		fmt.Fprintf(w, "    iotod 100-item find      %s\n", &find)
		fmt.Fprintf(w, "    iotod find, shared items %s\n", &findS)
		fmt.Fprintf(w, "    %-24s %s\n", base.name+" 100-key scan", &rawF)
		fmt.Fprintf(w, "    ratio                    %9.2fx / %.2fx   (bar: p50 <= %s, p99 <= %s: %s copying, %s shared)\n",
			find.rate()/rawF.rate(), findS.rate()/rawF.rate(), findBarP50, findBarP99,
			verdict(find.p50() <= findBarP50 && find.p99() <= findBarP99), verdict(findS.p50() <= findBarP50 && findS.p99() <= findBarP99))
	}
	heapReads := heapBytes()
	if k := len(o.report.P9) - 1; k >= 0 {
		o.report.P9[k].Memory = &P9Memory{HeapBefore: heapBefore, HeapAfter: heapAfter, HeapReads: heapReads, AnonBefore: anonBefore, AnonAfter: anonAfter}
	}
	printMemory(w, n, heapBefore, heapAfter, heapReads, anonBefore, anonAfter)
	return nil
}

// holdBytesPerItem sizes P9's default read cache to hold every item and
// every partition: the cache's own estimate is about 380 bytes per bench
// item and 780 per partition record, half the cache goes to each, and the
// partitions' 8 shards fill unevenly, so it leaves room.
const holdBytesPerItem = 2400

// firstReads reads every item once and every partition once, as a
// device's reads after a start do, filling the read cache, and reports
// their rates: the reads that come from the store.
func firstReads(ctx context.Context, d *db.DB, n int, findPart func(int, bool) error) (string, error) {
	start := time.Now()
	for j := range n {
		if _, err := d.Get(ctx, "Bench", db.Item{"dev": partKey(j), "id": idKey(j)}, nil); err != nil {
			return "", fmt.Errorf("P9 first gets: %w", err)
		}
	}
	gets := float64(n) / time.Since(start).Seconds()
	start = time.Now()
	for p := range n / partition {
		if err := findPart(p, false); err != nil {
			return "", fmt.Errorf("P9 first finds: %w", err)
		}
	}
	finds := float64(n/partition) / time.Since(start).Seconds()
	return fmt.Sprintf("%.0f gets/s, %.0f finds/s", gets, finds), nil
}

func printMemory(w io.Writer, n int, heapBefore, heapAfter, heapReads, anonBefore, anonAfter int64) {
	perItem := float64(heapAfter-heapBefore) / float64(n)
	perItemReads := float64(heapReads-heapBefore) / float64(n)
	fmt.Fprintf(w, "  memory per stored item     %.0f bytes of heap after load (%s before, %s after)  (bar: <= %d bytes: %s)\n",
		perItem, mib(heapBefore), mib(heapAfter), memBarPerItm, verdict(perItem <= memBarPerItm))
	fmt.Fprintf(w, "                             %.0f bytes of heap after the reads (%s, read cache included)  (%s)\n",
		perItemReads, mib(heapReads), verdict(perItemReads <= memBarPerItm))
	fmt.Fprintf(w, "  anonymous RSS              %s before, %s after load (%.0f bytes per item)\n",
		mib(anonBefore), mib(anonAfter), float64(anonAfter-anonBefore)/float64(n))
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}
