//go:build !device || !(386 || arm || mips || mipsle)

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/bench"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/stages/batch"
	"github.com/iotod/iotod/plugins/stages/policy"
	"github.com/iotod/iotod/plugins/transport/inproc"
	"github.com/iotod/iotod/runner"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure iotod beside raw baselines run in the same process",
	}
	cmd.AddCommand(cloudBenchCmds()...)
	cmd.AddCommand(newBenchDBCmd(), newBenchPipelineCmd(), newBenchReplicateCmd(), newBenchTriggersCmd(), newBenchPluginCmd())
	cmd.AddCommand(newBenchAPICmd())
	withBenchProgress(cmd)
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
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "db",
		Short: "P1 durable writes, P2 async writes and P9 reads (gets and finds at each size and number of readers), each beside raw badger",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runBench(&o.Dir, keep, cpuProfile, func() error { return bench.RunDB(cmd.Context(), o) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "folder for the benchmark stores (default: a new temporary folder, on the same disk as /tmp)")
	f.BoolVar(&keep, "keep", false, "keep the benchmark stores afterwards")
	f.IntVar(&o.Writers, "writers", 64, "concurrent writers for P1 and P2")
	f.DurationVar(&o.Duration, "duration", 3*time.Second, "length of each measured run")
	f.IntVar(&o.Runs, "runs", 3, "runs per figure (the median is reported)")
	f.IntSliceVar(&o.ReadSizes, "items", []int{100_000, 1_000_000}, "store sizes P9 loads and reads, in items")
	f.IntSliceVar(&o.Readers, "readers", []int{1, 2}, "numbers of concurrent readers P9 measures")
	f.Int64Var(&o.ReadCacheBytes, "read-cache", 0, "the db read cache in bytes (0: the default; -1: none)")
	f.StringVar(&o.Only, "only", "", "run only the writes (P1, P2) or the reads (P9)")
	f.BoolVar(&o.JSON, "json", false, "print the figures as one JSON document instead of the text report")
	f.StringVar(&o.Store, "store", "badger", "the device store measured, each beside its raw engine: badger or sqlite")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	return cmd
}

func newBenchReplicateCmd() *cobra.Command {
	var o bench.ReplicateOptions
	var keep, inProcess bool
	var cpuProfile, memory, memLimit string
	cmd := &cobra.Command{
		Use:   "replicate",
		Short: "P3 sustained replication, P4 latency and P5 catch-up over MQTT (embedded broker, device and cloud runners), each beside raw paho publishes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			o.Out, o.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if o.DeviceMemory, err = parseSize("--device-memory", memory); err != nil {
				return err
			}
			if o.DeviceMemLimit, err = parseSize("--device-memlimit", memLimit); err != nil {
				return err
			}
			if !inProcess {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("the device process: %w", err)
				}
				o.DeviceCommand = []string{exe, "bench", "replicate", "device"}
			}
			return runBench(&o.Dir, keep, cpuProfile, func() error { return bench.RunReplicate(cmd.Context(), o) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "folder for the stores, sessions and broker (default: a new temporary folder)")
	f.BoolVar(&keep, "keep", false, "keep the folder afterwards")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	f.BoolVar(&o.MemoryBroker, "memory-broker", false, "run the broker without persistence (pipelines.yaml persists)")
	f.StringSliceVar(&o.Sections, "only", nil, "run only these sections: p3, p4, p5, p8 (default: p3, p4, p5; p8 idles the device process for --idle)")
	f.BoolVar(&inProcess, "in-process", false, "run the device in this process too (P3, P5 and P8 then report the whole process's memory; P8 is skipped)")
	f.BoolVar(&o.JSON, "json", false, "print the figures as one JSON document instead of the text report")
	f.StringVar(&memory, "device-memory", "", "the device store's memory budget, e.g. 32MB (default: the storage's default sizes)")
	f.StringVar(&memLimit, "device-memlimit", "", "the device process's Go memory limit, e.g. 48MB (default: none)")
	f.StringVar(&o.DeviceHeapProfile, "device-heapprofile", "", "the device process writes a heap profile here at its heap's high-water mark (go tool pprof)")
	f.StringVar(&o.DeviceCgroup, "device-cgroup", "", "a memory cgroup folder the device process joins, e.g. /sys/fs/cgroup/memory/device with memory.limit_in_bytes set (Linux; default: none)")
	f.DurationVar(&o.Idle, "idle", 10*time.Minute, "P8: how long the device process idles before its resident set is read")
	f.StringVar(&o.Durability, "durability", "sync", "the device store's durability: sync or async")
	f.IntVar(&o.Changes, "changes", 200_000, "P3: creates streamed while the pipelines run")
	f.IntVar(&o.Writers, "writers", 4, "P3: concurrent writers")
	f.IntVar(&o.TxSize, "tx", 100, "P3: creates per transaction")
	f.IntVar(&o.RawMessages, "raw", 20_000, "messages per raw paho publish baseline")
	f.IntVar(&o.Runs, "runs", 3, "P3: runs (the median is reported)")
	f.IntVar(&o.Latency, "latency", 2_000, "P4: device changes timed")
	f.IntVar(&o.Rate, "rate", 200, "P4: changes per second")
	f.IntVar(&o.Down, "down", 500, "P4: cloud changes timed to the device")
	f.IntVar(&o.Offline, "offline", 1_000_000, "P5: changes queued before the device connects")
	f.IntVar(&o.Live, "live", 300, "P5: local creates timed during the drain (at most)")
	cmd.AddCommand(newBenchReplicateDeviceCmd())
	return cmd
}

// runBench runs run in the bench folder *dir (a new temporary folder when
// it is empty, removed afterwards unless keep), writing a CPU profile of it
// to cpuProfile when that is set.
func runBench(dir *string, keep bool, cpuProfile string, run func() error) error {
	if *dir == "" {
		d, err := os.MkdirTemp("", "iotod-bench-")
		if err != nil {
			return err
		}
		*dir = d
	}
	if !keep {
		defer os.RemoveAll(*dir)
	}
	stopProfile, err := startCPUProfile(cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	return run()
}

func newBenchTriggersCmd() *cobra.Command {
	var o bench.TriggerOptions
	cmd := &cobra.Command{
		Use:   "triggers",
		Short: "What triggers cost the apply path: apply rate without triggers and with each change queued for 3",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "iotod-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			o.Dir, o.Out = dir, cmd.OutOrStdout()
			return bench.RunTriggers(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Changes, "changes", 50_000, "device changes applied per run")
	f.IntVar(&o.Runs, "runs", 3, "runs per figure (the median is reported)")
	f.IntVar(&o.Triggers, "triggers", 3, "triggers each change is queued for")
	return cmd
}

func newBenchPluginCmd() *cobra.Command {
	var o bench.PluginOptions
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "P7: the example redact stage as an external plugin against the same code in-process, at batch sizes 1, 100 and 1000",
		Long: `Build the example plugin first: go build -o bin/redact ./examples/plugins/redact
then: iotod bench plugin --path bin/redact`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Path == "" {
				return fmt.Errorf("--path: the example redact plugin's binary (go build -o bin/redact ./examples/plugins/redact)")
			}
			o.Out = cmd.OutOrStdout()
			return bench.RunPlugin(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Path, "path", "", "the example redact plugin's binary")
	f.IntVar(&o.Changes, "changes", 100_000, "changes per figure")
	f.IntVar(&o.Runs, "runs", 3, "runs per figure (the median is reported)")
	f.IntSliceVar(&o.Sizes, "sizes", []int{1, 100, 1000}, "batch sizes")
	return cmd
}
