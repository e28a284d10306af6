package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/iotod/iotod/examples/plugins/redact/redact"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/external"
)

// PluginOptions configures RunPlugin.
type PluginOptions struct {
	// Path is the example redact plugin's binary
	// (go build -o bin/redact ./examples/plugins/redact).
	Path    string
	Out     io.Writer
	Changes int // changes per figure
	Runs    int
	Sizes   []int // batch sizes
}

func (o *PluginOptions) defaults() {
	if o.Changes <= 0 {
		o.Changes = 100_000
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if len(o.Sizes) == 0 {
		o.Sizes = []int{1, 100, 1000}
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// RunPlugin measures P7: the example redact stage run as an external
// plugin (its own process, gRPC over AutoMTLS) against the same code
// in-process, at each batch size, in one run, alternating the order.
func RunPlugin(ctx context.Context, o PluginOptions) error {
	o.defaults()
	cfg := redact.Config{Fields: []string{"password"}}
	local := redact.New(cfg)
	ec := external.NewDefaultConfig()
	ec.Path, ec.Config = o.Path, map[string]any{"fields": cfg.Fields}
	raw, err := external.NewStageFactory().Create(ctx, pipeline.Settings{ID: pipeline.ID{Type: external.TypeName, Name: "redact"},
		Kind: pipeline.KindStage, Site: "bench", Logger: slog.New(slog.DiscardHandler)}, &ec)
	if err != nil {
		return err
	}
	remote := raw.(*external.Stage)
	defer func() { _ = remote.Close(ctx) }()

	fmt.Fprintf(o.Out, "P7 an external stage (example redact, its own process over gRPC) against the same code in-process, %d changes per figure, median of %d\n", o.Changes, o.Runs)
	for _, size := range o.Sizes {
		batches := makeBatches(o.Changes, size)
		var in, ex []float64
		for run := range o.Runs {
			order := []pipeline.Stage{local, remote}
			if run%2 == 1 {
				order = []pipeline.Stage{remote, local}
			}
			for _, st := range order {
				rate, err := stageRate(ctx, st, batches)
				if err != nil {
					return err
				}
				if st == pipeline.Stage(local) {
					in = append(in, rate)
				} else {
					ex = append(ex, rate)
				}
			}
		}
		med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
		bar := ""
		if size >= 100 {
			bar = " (bar: <= 10% slower, ratio >= 0.90x)"
		}
		fmt.Fprintf(o.Out, "  batch %5d: in-process %10.0f changes/s (runs %s), external %10.0f changes/s (runs %s), ratio %.2fx%s\n",
			size, med(in), runList(in, "%.0f"), med(ex), runList(ex, "%.0f"), med(ex)/med(in), bar)
	}
	return nil
}

func makeBatches(n, size int) []*pipeline.Batch {
	var out []*pipeline.Batch
	for start := 0; start < n; start += size {
		b := &pipeline.Batch{V: pipeline.ProtocolVersion, ID: fmt.Sprint("b", start), Site: "bench"}
		for i := start; i < min(start+size, n); i++ {
			item, _ := json.Marshal(map[string]any{"dev": "d1", "id": fmt.Sprintf("%010d", i), "payload": payload, "password": "hunter2"})
			b.Changes = append(b.Changes, pipeline.Change{Seq: uint64(i + 1), Model: "Bench", Op: pipeline.OpUpsert,
				Key: pipeline.Key{PK: "bench#d1", SK: fmt.Sprintf("bench#%010d", i)}, Item: item,
				Version: pipeline.Version{Wall: 1700000000000 + int64(i), Origin: "bench"}, Origin: "bench"})
		}
		out = append(out, b)
	}
	return out
}

func stageRate(ctx context.Context, st pipeline.Stage, batches []*pipeline.Batch) (float64, error) {
	n := 0
	t0 := time.Now()
	for _, b := range batches {
		out, err := st.Process(ctx, b)
		if err != nil {
			return 0, err
		}
		n += len(out.Changes)
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}
