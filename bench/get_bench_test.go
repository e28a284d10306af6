package bench

import (
	"context"
	"testing"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// BenchmarkGetCached measures a Get served by the read cache (P9's path
// once the item is warm), for profiling.
func BenchmarkGetCached(b *testing.B) {
	ctx := context.Background()
	d, err := openIotodCache(ctx, "", b.TempDir(), "async", 64<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer d.close(ctx)
	const n = 1000
	for j := 0; j < n; j++ {
		if _, err := d.db.Transact(ctx, []db.WriteOp{{Op: pipeline.OpCreate, Model: "Bench", Item: benchItem(partKey(j), j)}}); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([]db.Item, n)
	for j := range keys {
		keys[j] = db.Item{"dev": partKey(j), "id": idKey(j)}
		if _, err := d.db.Get(ctx, "Bench", keys[j], nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := d.db.Get(ctx, "Bench", keys[i%n], nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkFindCached measures a 100-item find of a partition the read
// cache holds, for profiling.
func BenchmarkFindCached(b *testing.B) {
	b.Run("copies", func(b *testing.B) { benchFindCached(b, false) })
	b.Run("shared", func(b *testing.B) { benchFindCached(b, true) })
}

func benchFindCached(b *testing.B, shared bool) {
	ctx := context.Background()
	d, err := openIotodCache(ctx, "", b.TempDir(), "async", 64<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer d.close(ctx)
	const n = 1000
	ops := make([]db.WriteOp, 0, n)
	for j := 0; j < n; j++ {
		ops = append(ops, db.WriteOp{Op: pipeline.OpCreate, Model: "Bench", Item: benchItem(partKey(j), j)})
	}
	if _, err := d.db.Transact(ctx, ops); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		res, err := d.db.Find(ctx, "Bench", db.Item{"dev": partKey((i % (n / partition)) * partition)}, &db.Params{Limit: partition, Shared: shared})
		if err != nil || len(res.Items) != partition {
			b.Fatal(err, len(res.Items))
		}
		i++
	}
}
