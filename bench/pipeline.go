package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/runner"
	"github.com/iotod/iotod/schema"
)

// PipelineOptions configure `iotod bench pipeline`.
type PipelineOptions struct {
	Dir     string
	Changes int // changes queued in the device outbox (100,000)
	Runs    int // median of (3)
	// Stages are the sending pipeline's stages (policy and batch when
	// the caller's registry has them), built by the caller.
	Stages func() []runner.ComponentPlan
	// Transport is the inproc transport's factory.
	Transport pipeline.Factory
	Out       io.Writer
}

func storagePlan(dir string, side schema.Side, site string) runner.StoragePlan {
	cfg := badger.NewDefaultConfig()
	cfg.Path = dir
	return runner.StoragePlan{ComponentPlan: runner.ComponentPlan{Factory: badger.NewFactory(), Config: &cfg}, Side: side, Site: site}
}

// queueChanges writes n items on a device store so n changes wait in its
// outbox.
func queueChanges(ctx context.Context, dir string, n int) error {
	b, err := openIotod(ctx, "", dir, "async")
	if err != nil {
		return err
	}
	defer b.close(ctx)
	const batch = 500
	for i := 0; i < n; i += batch {
		ops := make([]db.WriteOp, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			ops = append(ops, db.WriteOp{Op: pipeline.OpCreate, Model: "Bench", Item: benchItem(fmt.Sprintf("d%d", j/partition), j)})
		}
		if _, err := b.db.Transact(ctx, ops); err != nil {
			return err
		}
	}
	return nil
}

// RunPipeline measures the framework's overhead per change: the same
// queued device changes drained to a cloud store through the runner (outbox
// -> stages -> inproc transport -> receiver -> apply -> ack -> trim), and by
// a direct store-to-store copy (outbox read -> apply -> trim) in the same run.
func RunPipeline(ctx context.Context, o PipelineOptions) error {
	if o.Changes == 0 {
		o.Changes = 100_000
	}
	if o.Runs == 0 {
		o.Runs = 3
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	sch, err := schema.ParseBytes([]byte(benchSchema), "json", "bench")
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "iotod bench pipeline: %s/%s, %d CPUs, Go %s, %d queued changes, median of %d runs\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), o.Changes, o.Runs)
	var viaRunner, direct []float64
	for r := 0; r < o.Runs; r++ {
		base := filepath.Join(o.Dir, fmt.Sprint("run", r))
		rate, err := runnerDrain(ctx, sch, base, o)
		if err != nil {
			return fmt.Errorf("pipeline run: %w", err)
		}
		viaRunner = append(viaRunner, rate)
		rate, err = directCopy(ctx, sch, base, o)
		if err != nil {
			return fmt.Errorf("direct copy: %w", err)
		}
		direct = append(direct, rate)
	}
	p, d := median(viaRunner), median(direct)
	fmt.Fprintf(o.Out, "  through the pipeline runner  %9.0f changes/s\n", p)
	fmt.Fprintf(o.Out, "  direct store-to-store copy   %9.0f changes/s\n", d)
	fmt.Fprintf(o.Out, "  ratio                        %9.2fx\n", p/d)
	fmt.Fprintf(o.Out, "  framework overhead           %9.1f µs per change\n", (1/p-1/d)*1e6)
	return nil
}

func runnerDrain(ctx context.Context, sch *schema.Schema, base string, o PipelineOptions) (float64, error) {
	devDir, cloudDir := filepath.Join(base, "dev"), filepath.Join(base, "cloud")
	if err := queueChanges(ctx, devDir, o.Changes); err != nil {
		return 0, err
	}
	var stages []runner.ComponentPlan
	if o.Stages != nil {
		stages = o.Stages()
	}
	plan := runner.Plan{Site: "bench", Schema: sch,
		Storage:    map[string]runner.StoragePlan{"local": storagePlan(devDir, schema.SideDevice, "bench"), "cloud": storagePlan(cloudDir, schema.SideCloud, "cloud")},
		Transports: map[string]runner.ComponentPlan{"bus": {ID: pipeline.ID{Type: o.Transport.Type()}, Factory: o.Transport, Config: o.Transport.NewDefaultConfig()}},
		Pipelines: []runner.PipelinePlan{
			{Name: "up", From: runner.Ref{Kind: pipeline.KindStorage, Name: "local"}, To: runner.Ref{Kind: pipeline.KindTransport, Name: "bus"}, Direction: pipeline.Up, Stages: stages},
			{Name: "ingest", From: runner.Ref{Kind: pipeline.KindTransport, Name: "bus"}, To: runner.Ref{Kind: pipeline.KindStorage, Name: "cloud"}, Direction: pipeline.Up},
		}}
	r, err := runner.New(plan, runner.Options{})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := r.Start(ctx); err != nil {
		return 0, err
	}
	err = r.Sync(ctx)
	elapsed := time.Since(start)
	if serr := r.Shutdown(ctx); err == nil {
		err = serr
	}
	return float64(o.Changes) / elapsed.Seconds(), err
}

func directCopy(ctx context.Context, sch *schema.Schema, base string, o PipelineOptions) (float64, error) {
	devDir, cloudDir := filepath.Join(base, "dev2"), filepath.Join(base, "cloud2")
	if err := queueChanges(ctx, devDir, o.Changes); err != nil {
		return 0, err
	}
	start := time.Now() // opening counts, as it does for the runner
	dev, err := openIotod(ctx, "", devDir, "sync")
	if err != nil {
		return 0, err
	}
	defer dev.close(ctx)
	cfg := badger.NewDefaultConfig()
	cfg.Path = cloudDir
	st, err := badger.Open(ctx, cfg, nil)
	if err != nil {
		return 0, err
	}
	defer st.Close(ctx)
	cloud, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "cloud", Side: schema.SideCloud})
	if err != nil {
		return 0, err
	}
	var cursor uint64
	for {
		changes, err := dev.store.Outbox().Read(ctx, cursor, 500)
		if err != nil {
			return 0, err
		}
		if len(changes) == 0 {
			break
		}
		if _, err := cloud.ApplyRemote(ctx, changes); err != nil {
			return 0, err
		}
		cursor = changes[len(changes)-1].Seq
		if err := dev.store.Outbox().Trim(ctx, cursor); err != nil {
			return 0, err
		}
	}
	return float64(o.Changes) / time.Since(start).Seconds(), nil
}
