package bench

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/iotod/iotod/pipeline"
)

// Helpers of several benches.

// applyBatch is the size of the batches the ingest pipeline hands db.Apply
// (the batch stage's count).
const applyBatch = 500

func runList(xs []float64, format string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, ", ")
}

// deviceChanges makes n device changes as a device sends them: creates of
// ~200-byte items, read back from a device store's outbox in dir (""; a
// temporary folder, removed afterwards).
func deviceChanges(ctx context.Context, dir string, n int) ([]pipeline.Change, error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "iotod-bench-device-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := queueChanges(ctx, dir, n); err != nil {
		return nil, err
	}
	dev, err := openIotod(ctx, "", dir, "async")
	if err != nil {
		return nil, err
	}
	defer dev.close(ctx)
	var all []pipeline.Change
	var cursor uint64
	for len(all) < n {
		cs, err := dev.store.Outbox().Read(ctx, cursor, applyBatch)
		if err != nil {
			return nil, err
		}
		if len(cs) == 0 {
			return nil, fmt.Errorf("the device outbox holds %d changes, want %d", len(all), n)
		}
		all = append(all, cs...)
		cursor = cs[len(cs)-1].Seq
	}
	return all[:n], nil
}

// alternate runs iotod's measurement and its baseline's for run r, iotod
// first on even runs and the baseline first on odd ones, so that neither
// side always comes first; it stops at the first error.
func alternate(r int, iotod, baseline func() (float64, error)) (p, b float64, err error) {
	if r%2 == 0 {
		if p, err = iotod(); err == nil {
			b, err = baseline()
		}
		return p, b, err
	}
	if b, err = baseline(); err == nil {
		p, err = iotod()
	}
	return p, b, err
}
