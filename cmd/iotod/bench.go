package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/bench"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/runner"
	"github.com/iotod/iotod/pipeline/stages/batch"
	"github.com/iotod/iotod/pipeline/stages/policy"
	"github.com/iotod/iotod/plugins/transport/inproc"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure iotod beside raw baselines run in the same process",
	}
	cmd.AddCommand(newBenchDBCmd(), newBenchPipelineCmd())
	return cmd
}

func newBenchPipelineCmd() *cobra.Command {
	var o bench.PipelineOptions
	var delay time.Duration
	var count int
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "The pipeline framework's overhead per change: device -> cloud through the runner against a direct store-to-store copy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "iotod-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			pf, bf := policy.NewFactory(), batch.NewFactory()
			bc := bf.NewDefaultConfig().(*batch.Config)
			bc.Delay, bc.Count = delay, count
			o.Dir, o.Out, o.Transport = dir, cmd.OutOrStdout(), inproc.NewFactory()
			o.Stages = func() []runner.ComponentPlan {
				return []runner.ComponentPlan{
					{ID: pipeline.ID{Type: pf.Type()}, Factory: pf, Config: pf.NewDefaultConfig()},
					{ID: pipeline.ID{Type: bf.Type()}, Factory: bf, Config: bc},
				}
			}
			fmt.Fprintf(o.Out, "sending pipeline: policy, batch {delay: %s, count: %d}; transport inproc\n", delay, count)
			return bench.RunPipeline(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Changes, "changes", 100_000, "changes queued in the device outbox")
	f.IntVar(&o.Runs, "runs", 3, "runs per figure (the median is reported)")
	f.DurationVar(&delay, "delay", 5*time.Millisecond, "the batch stage's delay")
	f.IntVar(&count, "count", 500, "the batch stage's count")
	return cmd
}

func newBenchDBCmd() *cobra.Command {
	var o bench.DBOptions
	var keep bool
	cmd := &cobra.Command{
		Use:   "db",
		Short: "P1 durable writes, P2 async writes and P9 reads, each beside raw badger",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Dir == "" {
				dir, err := os.MkdirTemp("", "iotod-bench-")
				if err != nil {
					return err
				}
				o.Dir = dir
			}
			if !keep {
				defer os.RemoveAll(o.Dir)
			}
			o.Out = cmd.OutOrStdout()
			return bench.RunDB(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "folder for the benchmark stores (default: a new temporary folder, on the same disk as /tmp)")
	f.BoolVar(&keep, "keep", false, "keep the benchmark stores afterwards")
	f.IntVar(&o.Writers, "writers", 64, "concurrent writers for P1 and P2")
	f.DurationVar(&o.Duration, "duration", 3*time.Second, "length of each measured run")
	f.IntVar(&o.Runs, "runs", 3, "runs per write figure (the median is reported)")
	f.IntVar(&o.ReadItems, "items", 1_000_000, "items loaded for P9")
	return cmd
}
