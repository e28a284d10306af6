package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
)

// ReplicateOptions configure `iotod bench replicate`: P3, P4 and P5
// through an embedded broker, a device runner and a cloud runner in this
// process.
type ReplicateOptions struct {
	// Dir is where stores, sessions and the broker's persistence live.
	Dir string
	// Sections picks what runs: any of "p3", "p4", "p5" (all when empty).
	Sections []string
	// Durability is the device store's (sync, as pipelines.yaml).
	Durability string
	// Changes is P3's number of creates streamed while the pipelines run
	// (200,000), by Writers writers (4) in transactions of TxSize (100).
	Changes, Writers, TxSize int
	// RawMessages is how many messages each raw publish baseline sends
	// (20,000).
	RawMessages int
	// Runs is how many times P3 and its baselines run; the median is
	// reported (3).
	Runs int
	// Latency is P4's number of changes (2,000) written at Rate per
	// second (200) by one writer; Down is the number of cloud writes timed
	// to the device (500, at Rate too).
	Latency, Rate, Down int
	// Offline is P5's number of changes queued before the device connects
	// (1,000,000); Live is how many local creates are timed during the
	// drain (300).
	Offline, Live int
	// MemoryBroker runs the broker without persistence.
	MemoryBroker bool
	// DeviceCommand runs the device in a process of its own for P3, P5
	// and P8 (this binary's hidden `bench replicate-device`, which calls
	// RunDevice); nil runs it in this process.
	DeviceCommand []string
	// DeviceMemory is the device store's memory budget (0: the default
	// sizes).
	DeviceMemory pipeline.ByteSize
	// DeviceMemLimit is the device process's Go memory limit (0: none,
	// or GOMEMLIMIT from the environment).
	DeviceMemLimit pipeline.ByteSize
	// DeviceHeapProfile is where the device process writes a heap profile
	// at its heap's high-water mark (none when empty).
	DeviceHeapProfile string
	// DeviceCgroup is a memory cgroup folder the device process joins
	// (none when empty): a limit there holds the page cache too.
	DeviceCgroup string
	// Idle is how long P8 keeps the device process idle before its
	// resident set is read (10 minutes).
	Idle time.Duration
	// JSON prints the figures as one JSON document on Out instead of the
	// text report.
	JSON   bool
	Out    io.Writer
	Stderr io.Writer // the device process's log (os.Stderr)

	report ReplicateReport
	text   io.Writer // the text report: Out, or nowhere with JSON
}

// ReplicateReport is `iotod bench replicate --json`: the figures of the
// sections that ran. Durations are in nanoseconds, sizes in bytes, rates
// per second.
type ReplicateReport struct {
	Machine       string `json:"machine"`
	DeviceProcess bool   `json:"device_process"`
	P3            *struct {
		Rate, WriteRate, Raw1, Raw8 float64
		Device                      *procPeak `json:",omitempty"`
		Process                     procPeak  // this process: broker and cloud (and the device when DeviceProcess is false)
	} `json:"p3,omitempty"`
	P4 *struct {
		Up, Local, Raw, Down Dist
	} `json:"p4,omitempty"`
	P5 *struct {
		Changes          int
		QueuedSeconds    float64
		DrainSeconds     float64
		Raw1             float64
		During, Idle     Dist
		Device           *procPeak `json:",omitempty"`
		DeviceHeapInuse  uint64    `json:",omitempty"`
		Process          procPeak
		ProcessBeforeRSS int64
	} `json:"p5,omitempty"`
	P8 *struct {
		IdleSeconds float64
		Device      procPeak
		// PageBytes is the status page the device served before idling.
		PageBytes int
	} `json:"p8,omitempty"`
}

func (o *ReplicateOptions) defaults() {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&o.Changes, 200_000)
	set(&o.Writers, 4)
	set(&o.TxSize, 100)
	set(&o.RawMessages, 20_000)
	set(&o.Runs, 3)
	set(&o.Latency, 2_000)
	set(&o.Rate, 200)
	set(&o.Down, 500)
	set(&o.Offline, 1_000_000)
	set(&o.Live, 300)
	if o.Durability == "" {
		o.Durability = badger.DurabilitySync
	}
	if o.Idle == 0 {
		o.Idle = 10 * time.Minute
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	o.text = o.Out
	if o.JSON {
		o.text = io.Discard
	}
}

// runs says whether section runs: every one but p8 (10 minutes idle) when
// none is named.
func (o *ReplicateOptions) runs(section string) bool {
	if len(o.Sections) == 0 {
		return section != "p8"
	}
	for _, s := range o.Sections {
		if strings.EqualFold(s, section) {
			return true
		}
	}
	return false
}

// P3's batch stage is pipelines.yaml's; P4's has the 20ms delay the bar
// names.
const (
	p3Delay = 50 * time.Millisecond
	p4Delay = 20 * time.Millisecond
)

// RunReplicate measures P3, P4 and P5 and prints each beside its baseline
// from the same run.
func RunReplicate(ctx context.Context, o ReplicateOptions) error {
	o.defaults()
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("bench replicate: %w", err)
	}
	persistence := "badger persistence"
	if o.MemoryBroker {
		persistence = "no persistence"
	}
	where := "a device runner and a cloud runner in this process"
	if o.DeviceCommand != nil {
		where = "the cloud runner in this process, the device runner in a process of its own (P3, P5, P8)"
	}
	o.report.Machine = fmt.Sprintf("%s/%s, %d CPUs (%s), Go %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), runtime.Version())
	o.report.DeviceProcess = o.DeviceCommand != nil
	fmt.Fprintf(o.text, "iotod bench replicate: %s; embedded broker (mochi, %s) on loopback,\n"+
		"  %s, each with its own mqtt transport; device durability %s, cloud sync\n",
		o.report.Machine, persistence, where, o.Durability)
	if o.DeviceMemory != 0 || o.DeviceMemLimit != 0 {
		fmt.Fprintf(o.text, "  device store memory: %s (0: the default sizes); device process Go memory limit: %s\n", o.DeviceMemory, o.DeviceMemLimit)
	}
	n := 0
	fresh := func(name string) rigConfig {
		n++
		return rigConfig{dir: filepath.Join(o.Dir, fmt.Sprintf("%s-%d", name, n)), durability: o.Durability, persist: !o.MemoryBroker, memory: o.DeviceMemory}
	}
	if o.runs("p3") {
		if err := runP3(ctx, &o, fresh); err != nil {
			return fmt.Errorf("P3: %w", err)
		}
	}
	if o.runs("p4") {
		debug.FreeOSMemory()
		cfg := fresh("p4")
		cfg.delay = p4Delay
		if err := runP4(ctx, &o, cfg); err != nil {
			return fmt.Errorf("P4: %w", err)
		}
	}
	if o.runs("p5") {
		debug.FreeOSMemory()
		cfg := fresh("p5")
		cfg.delay = p3Delay
		if err := runP5(ctx, &o, cfg); err != nil {
			return fmt.Errorf("P5: %w", err)
		}
	}
	if o.runs("p8") && o.DeviceCommand != nil {
		cfg := fresh("p8")
		cfg.delay = p3Delay
		if err := runP8(ctx, &o, cfg); err != nil {
			return fmt.Errorf("P8: %w", err)
		}
	}
	if o.JSON {
		return printJSON(o.Out, o.report)
	}
	return nil
}

func runP3(ctx context.Context, o *ReplicateOptions, fresh func(string) rigConfig) error {
	var iotod, raw1, raw8, writes []float64
	var peak int64
	var devPeak, procMem procPeak
	var devCPU, selfCPU []float64
	for run := 0; run < o.Runs; run++ {
		cfg := fresh("p3")
		cfg.delay = p3Delay
		rg, err := startRig(ctx, cfg)
		if err != nil {
			return err
		}
		r1, err := rg.rawPublish(ctx, o.RawMessages, 1)
		if err != nil {
			return errors.Join(err, rg.close(ctx))
		}
		r8, err := rg.rawPublish(ctx, o.RawMessages, 8)
		if err != nil {
			return errors.Join(err, rg.close(ctx))
		}
		var rate, wrate float64
		var rss int64
		var dev, self procPeak
		if o.DeviceCommand != nil {
			rate, wrate, dev, self, err = rg.sustainedProc(ctx, o)
			rss = self.AnonRSS
		} else {
			rate, wrate, rss, err = rg.sustained(ctx, *o)
		}
		if err = errors.Join(err, rg.close(ctx)); err != nil {
			return err
		}
		iotod, raw1, raw8, writes = append(iotod, rate), append(raw1, r1), append(raw8, r8), append(writes, wrate)
		if run == 0 {
			peak, procMem = rss, self // later runs inherit the heap of earlier ones
		}
		devPeak = maxPeak(devPeak, dev) // a fresh process each run
		devCPU, selfCPU = append(devCPU, dev.CPU), append(selfCPU, self.CPU)
		debug.FreeOSMemory()
	}
	o.report.P3 = &struct {
		Rate, WriteRate, Raw1, Raw8 float64
		Device                      *procPeak `json:",omitempty"`
		Process                     procPeak
	}{Rate: median(iotod), WriteRate: median(writes), Raw1: median(raw1), Raw8: median(raw8), Process: procMem}
	w := o.text
	fmt.Fprintf(w, "\nP3 sustained replication up: %d creates (~200-byte items) by %d writers in %d-item transactions while the\n"+
		"  pipelines run; device commit -> mqtt -> broker -> cloud store applied -> ack -> outbox trimmed; median of %d runs\n",
		o.Changes, o.Writers, o.TxSize, o.Runs)
	fmt.Fprintf(w, "  iotod                          %9.0f changes/s (until Sync: the device outbox empty)\n", median(iotod))
	fmt.Fprintf(w, "    local writes alone           %9.0f changes/s (the writers' own rate, same run)\n", median(writes))
	if o.DeviceCommand != nil {
		o.report.P3.Device = &devPeak
		fmt.Fprintf(w, "    device process memory        %s anonymous RSS, %s whole RSS (peaks, worst of %d runs; bar: <= 64 MB)\n", mib(devPeak.AnonRSS), mib(devPeak.RSS), o.Runs)
		fmt.Fprintf(w, "    this process (broker, cloud) %s anonymous RSS (peak, first run)\n", mib(peak))
		dc, sc := median(devCPU)/float64(o.Changes)*1e6, median(selfCPU)/float64(o.Changes)*1e6
		fmt.Fprintf(w, "    CPU per change               device %.1f us, broker and cloud %.1f us: %.1f us in all, so %d CPUs allow at most %.0f changes/s\n",
			dc, sc, dc+sc, runtime.NumCPU(), float64(runtime.NumCPU())*1e6/(dc+sc))
	} else {
		fmt.Fprintf(w, "    memory                       %s anonymous RSS (peak, first run, whole process: broker, both sides)\n", mib(peak))
	}
	fmt.Fprintf(w, "  raw paho QoS 1, 1 publisher    %9.0f msgs/s (%d 200-byte messages, each waiting for its PUBACK)\n", median(raw1), o.RawMessages)
	fmt.Fprintf(w, "  raw paho QoS 1, 8 publishers   %9.0f msgs/s\n", median(raw8))
	fmt.Fprintf(w, "  ratio to 1 publisher           %9.1fx   (bar: >= 3x, >= 20,000 changes/s)\n", median(iotod)/median(raw1))
	fmt.Fprintf(w, "  ratio to 8 publishers          %9.1fx\n", median(iotod)/median(raw8))
	return nil
}

// sustained streams o.Changes creates into the running device and times
// until Sync returns: every change applied in the cloud and acknowledged.
// It returns that rate, the writers' own rate and the peak anonymous RSS.
func (rg *rig) sustained(ctx context.Context, o ReplicateOptions) (float64, float64, int64, error) {
	cloud, err := rg.startCloud(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	dev, err := rg.startDevice(ctx)
	if err != nil {
		return 0, 0, 0, errors.Join(err, shutdown(ctx, cloud))
	}
	var applied atomic.Int64
	cloud.db.OnChange("Bench", func(_ context.Context, ev db.Event) {
		if ev.Remote {
			applied.Add(1)
		}
	})
	stopRSS := sampleRSS()
	start := time.Now()
	werr := writeConcurrently(ctx, dev.db, o.Writers, o.Changes, o.TxSize)
	wrote := time.Since(start)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	serr := dev.r.Sync(sctx)
	cancel()
	elapsed := time.Since(start)
	peak := stopRSS()
	err = errors.Join(werr, serr, shutdown(context.Background(), dev, cloud))
	if err == nil && applied.Load() != int64(o.Changes) {
		err = fmt.Errorf("the cloud applied %d changes, want %d", applied.Load(), o.Changes)
	}
	return float64(o.Changes) / elapsed.Seconds(), float64(o.Changes) / wrote.Seconds(), peak, err
}

// writeConcurrently creates n Bench items from writers goroutines, each in
// transactions of txSize creates.
func writeConcurrently(ctx context.Context, d *db.DB, writers, n, txSize int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := int(next.Add(int64(txSize))) - txSize
				if first >= n {
					return
				}
				ops := make([]db.WriteOp, 0, txSize)
				for i := first; i < min(first+txSize, n); i++ {
					ops = append(ops, db.WriteOp{Op: pipeline.OpCreate, Model: "Bench", Item: benchItem(fmt.Sprintf("w%d", w), i)})
				}
				if _, err := d.Transact(ctx, ops); err != nil {
					errs[w] = fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sampleRSS samples the anonymous RSS every 50ms until the returned func
// is called, which returns the peak (the same on later calls).
func sampleRSS() func() int64 {
	stop, peak := make(chan struct{}), make(chan int64, 1)
	go func() {
		top := anonRSSBytes()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				top = max(top, anonRSSBytes())
			case <-stop:
				peak <- max(top, anonRSSBytes())
				return
			}
		}
	}()
	var once sync.Once
	var top int64
	return func() int64 {
		once.Do(func() { close(stop); top = <-peak })
		return top
	}
}

// cpuModel reads the processor's name from /proc/cpuinfo ("unknown"
// elsewhere).
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "unknown"
}
