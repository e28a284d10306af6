package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
)

// TriggerOptions configures RunTriggers.
type TriggerOptions struct {
	Dir     string
	Out     io.Writer
	Changes int // device changes applied per run
	Runs    int
	// Triggers is how many trigger queues each applied change goes to in
	// the second figure.
	Triggers int
}

func (o *TriggerOptions) defaults() {
	if o.Changes <= 0 {
		o.Changes = 50_000
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Triggers <= 0 {
		o.Triggers = 3
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// RunTriggers measures what triggers cost the apply path: the same
// device changes applied to a fresh cloud store (badger, sync
// durability) in batches of 500, without triggers and with each applied
// change queued for o.Triggers triggers in the same transaction. The
// deliveries themselves run off the apply path and are not timed.
func RunTriggers(ctx context.Context, o TriggerOptions) error {
	o.defaults()
	sch, err := schema.ParseBytes([]byte(benchSchema), "json", "bench")
	if err != nil {
		return err
	}
	changes, err := deviceChanges(ctx, filepath.Join(o.Dir, "device"), o.Changes)
	if err != nil {
		return err
	}
	names := make([]string, o.Triggers)
	for i := range names {
		names[i] = fmt.Sprintf("ingest:bench/%d", i)
	}
	var without, with []float64
	for run := range o.Runs {
		for _, triggers := range [][]string{nil, names} {
			rate, err := applyRate(ctx, sch, filepath.Join(o.Dir, fmt.Sprintf("cloud-%d-%d", run, len(triggers))), changes, triggers)
			if err != nil {
				return err
			}
			if triggers == nil {
				without = append(without, rate)
			} else {
				with = append(with, rate)
			}
		}
	}
	med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	fmt.Fprintf(o.Out, "trigger overhead on the apply path (%d device changes, batches of %d, badger sync, median of %d)\n", o.Changes, applyBatch, o.Runs)
	fmt.Fprintf(o.Out, "  apply, no trigger              %8.0f changes/s  (runs: %s)\n", med(without), runList(without, "%.0f"))
	fmt.Fprintf(o.Out, "  apply, %d triggers queued       %8.0f changes/s  (runs: %s)\n", o.Triggers, med(with), runList(with, "%.0f"))
	fmt.Fprintf(o.Out, "  ratio                          %8.2fx\n", med(with)/med(without))
	return nil
}

// applyRate applies changes to a fresh cloud database in dir, in batches
// of applyBatch, queueing each for triggers, and returns changes/s.
func applyRate(ctx context.Context, sch *schema.Schema, dir string, changes []pipeline.Change, triggers []string) (float64, error) {
	cfg := badger.NewDefaultConfig()
	cfg.Path, cfg.Durability = dir, "sync"
	st, err := badger.Open(ctx, cfg, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = st.Close(ctx); _ = os.RemoveAll(dir) }()
	cloud, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "cloud", Side: schema.SideCloud})
	if err != nil {
		return 0, err
	}
	src := db.Source{Site: "bench", Triggers: triggers}
	t0 := time.Now()
	for start := 0; start < len(changes); start += applyBatch {
		res, err := cloud.Apply(ctx, src, changes[start:min(start+applyBatch, len(changes))])
		if err != nil {
			return 0, err
		}
		for _, r := range res {
			if r.Err != nil {
				return 0, r.Err
			}
		}
	}
	return float64(len(changes)) / time.Since(t0).Seconds(), nil
}
