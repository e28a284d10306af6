package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// The device in a process of its own: `iotod bench replicate` starts
// DeviceCommand with a DeviceSpec as JSON on the command line; the device
// process runs RunDevice, which reports as JSON lines on its stdout and
// waits for "go" on its stdin before it starts its runner. The parent
// samples the child's memory from /proc/<pid>/status, so the device's
// figure holds nothing of the broker or the cloud.

// DeviceSpec is what the device process does.
type DeviceSpec struct {
	// Mode is "p3" (stream Changes creates while the runner replicates,
	// then Sync), "p5" (queue Offline changes with the runner stopped,
	// then start it and drain, with Live timed creates) or "idle" (start
	// the runner, replicate one change, then idle for Idle).
	Mode       string        `json:"mode"`
	Dir        string        `json:"dir"`
	URL        string        `json:"url"`
	Durability string        `json:"durability"`
	Delay      time.Duration `json:"delay"`
	// Memory is the device store's memory budget (0: the default sizes).
	Memory pipeline.ByteSize `json:"memory,omitempty"`
	// MemLimit is the device process's Go memory limit (0: GOMEMLIMIT
	// or none).
	MemLimit pipeline.ByteSize `json:"memlimit,omitempty"`
	Changes  int               `json:"changes,omitempty"`
	Writers  int               `json:"writers,omitempty"`
	TxSize   int               `json:"tx,omitempty"`
	Offline  int               `json:"offline,omitempty"`
	Live     int               `json:"live,omitempty"`
	Idle     time.Duration     `json:"idle,omitempty"`
	// HeapProfile, when set, is where the device writes a heap profile
	// each time its Go heap in use reaches a new high (at most every 2s).
	HeapProfile string `json:"heapprofile,omitempty"`
	// Cgroup, when set, is a memory cgroup folder the device process
	// joins before it starts (it writes its pid to cgroup.procs there), so
	// that a limit on it (page cache included) is the device's RAM.
	Cgroup string `json:"cgroup,omitempty"`
}

// deviceEvent is one line the device process writes.
type deviceEvent struct {
	Event string `json:"event"` // "ready", "done" or "error"
	Err   string `json:"err,omitempty"`
	// ready in p5: how long queueing took
	Queued float64 `json:"queued_s,omitempty"`
	// done
	Seconds    float64 `json:"seconds,omitempty"`      // p3, p5: start -> Sync
	WriteRate  float64 `json:"write_rate,omitempty"`   // p3: the writers' own rate
	During     *Dist   `json:"during,omitempty"`       // p5: live creates during the drain
	Idle       *Dist   `json:"idle,omitempty"`         // p5: the same creates, pipelines idle
	HeapInuse  uint64  `json:"heap_inuse,omitempty"`   // Go heap in use at the end
	GoMemLimit int64   `json:"gomemlimit,omitempty"`   // the process's memory limit
	AnonRSS    int64   `json:"anon_rss_end,omitempty"` // at the end, from inside
	PageBytes  int     `json:"page_bytes,omitempty"`   // idle: the status page served before idling
}

// RunDevice is the device process: it runs spec and reports on out,
// reading "go" from in before its runner starts.
func RunDevice(ctx context.Context, spec DeviceSpec, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	emit := func(ev deviceEvent) { _ = enc.Encode(ev) }
	err := runDevice(ctx, spec, bufio.NewScanner(in), emit)
	if err != nil {
		emit(deviceEvent{Event: "error", Err: err.Error()})
	}
	return err
}

func runDevice(ctx context.Context, spec DeviceSpec, in *bufio.Scanner, emit func(deviceEvent)) (err error) {
	if spec.MemLimit > 0 {
		debug.SetMemoryLimit(int64(spec.MemLimit))
	}
	if spec.Cgroup != "" {
		if err := os.WriteFile(filepath.Join(spec.Cgroup, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("device: joining cgroup: %w", err)
		}
	}
	if spec.HeapProfile != "" {
		stop := profileHeapPeaks(spec.HeapProfile)
		defer stop()
	}
	sch, err := schema.ParseBytes([]byte(replicateSchema), "json", "bench")
	if err != nil {
		return err
	}
	rg := &rig{cfg: rigConfig{dir: spec.Dir, delay: spec.Delay, durability: spec.Durability, memory: spec.Memory}, sch: sch, url: spec.URL}
	waitGo := func() error {
		if !in.Scan() || in.Text() != "go" {
			return fmt.Errorf("device: no go from the parent: %v", in.Err())
		}
		return nil
	}
	end := func(ev deviceEvent) {
		var ms runtimeMem
		ms.read()
		ev.Event, ev.HeapInuse, ev.GoMemLimit, ev.AnonRSS = "done", ms.heapInuse, debug.SetMemoryLimit(-1), anonRSSBytes()
		emit(ev)
	}
	switch spec.Mode {
	case "p3":
		emit(deviceEvent{Event: "ready"})
		if err := waitGo(); err != nil {
			return err
		}
		dev, err := rg.startDevice(ctx)
		if err != nil {
			return err
		}
		start := time.Now()
		werr := writeConcurrently(ctx, dev.db, spec.Writers, spec.Changes, spec.TxSize)
		wrote := time.Since(start)
		sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		serr := dev.r.Sync(sctx)
		cancel()
		elapsed := time.Since(start)
		if err := errors.Join(werr, serr, shutdown(context.Background(), dev)); err != nil {
			return err
		}
		end(deviceEvent{Seconds: elapsed.Seconds(), WriteRate: float64(spec.Changes) / wrote.Seconds()})
		return nil
	case "p5":
		t0 := time.Now()
		if err := rg.queueOffline(ctx, spec.Offline); err != nil {
			return err
		}
		debug.FreeOSMemory()
		emit(deviceEvent{Event: "ready", Queued: time.Since(t0).Seconds()})
		if err := waitGo(); err != nil {
			return err
		}
		start := time.Now()
		dev, err := rg.startDevice(ctx)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, shutdown(context.Background(), dev)) }()
		drained := make(chan struct{})
		liveDone := make(chan error, 1)
		var during, idle latencies
		go func() { liveDone <- liveWrites(ctx, dev.db, "live", spec.Live, drained, &during) }()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		err = dev.r.Sync(sctx)
		cancel()
		drain := time.Since(start)
		close(drained)
		if err = errors.Join(err, <-liveDone); err != nil {
			return err
		}
		if err := liveWrites(ctx, dev.db, "idle", min(spec.Live, 200), nil, &idle); err != nil {
			return err
		}
		d, i := during.dist(), idle.dist()
		end(deviceEvent{Seconds: drain.Seconds(), During: &d, Idle: &i})
		return nil
	case "idle":
		dev, err := rg.startDevice(ctx)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, shutdown(context.Background(), dev)) }()
		if _, err := dev.db.Create(ctx, "Bench", benchItem("idle", 0), nil); err != nil {
			return err
		}
		if err := dev.r.Sync(ctx); err != nil {
			return err
		}
		page, stopPage, err := servePage(ctx, dev, deviceSite)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stopPage(context.Background())) }()
		emit(deviceEvent{Event: "ready"})
		select {
		case <-time.After(spec.Idle):
		case <-ctx.Done():
			return ctx.Err()
		}
		end(deviceEvent{Seconds: spec.Idle.Seconds(), PageBytes: page})
		return nil
	}
	return fmt.Errorf("device: unknown mode %q", spec.Mode)
}

// deviceProc is a started device process.
type deviceProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
	mem   func() procPeak
	wait  chan error
}

// procPeak is a process's memory: the peaks of its anonymous and whole
// resident set, sampled every 50ms, and its resident high-water mark.
type procPeak struct {
	AnonRSS int64 `json:"peak_anon_rss"`
	RSS     int64 `json:"peak_rss"`
	HWM     int64 `json:"vm_hwm"`
	Last    int64 `json:"last_rss"` // the whole resident set at the last sample
	// CPU is the processor time (user and system) the process used while
	// sampled, in seconds.
	CPU float64 `json:"cpu_seconds"`
}

// startDevice starts the device process of spec and waits for its ready
// line.
func startDeviceProc(ctx context.Context, command []string, spec DeviceSpec, stderr io.Writer) (*deviceProc, deviceEvent, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, deviceEvent{}, err
	}
	cmd := exec.CommandContext(ctx, command[0], append(command[1:], "--spec", string(b))...)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, deviceEvent{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, deviceEvent{}, err
	}
	if err := cmd.Start(); err != nil {
		return nil, deviceEvent{}, fmt.Errorf("device process: %w", err)
	}
	p := &deviceProc{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout), wait: make(chan error, 1)}
	p.lines.Buffer(nil, 1<<20)
	p.mem = sampleProc(cmd.Process.Pid)
	ev, err := p.next()
	if err == nil && ev.Event != "ready" {
		err = fmt.Errorf("device process: want ready, got %q", ev.Event)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, ev, err
	}
	return p, ev, nil
}

// next reads the device's next line; an error line is an error.
func (p *deviceProc) next() (deviceEvent, error) {
	var ev deviceEvent
	if !p.lines.Scan() {
		return ev, fmt.Errorf("device process ended: %v", errors.Join(p.lines.Err(), p.cmd.Wait()))
	}
	if err := json.Unmarshal(p.lines.Bytes(), &ev); err != nil {
		return ev, fmt.Errorf("device process said %q: %w", p.lines.Text(), err)
	}
	if ev.Event == "error" {
		return ev, fmt.Errorf("device process: %s", ev.Err)
	}
	return ev, nil
}

// run tells the device to go, waits for its done line and its exit, and
// returns the line and the process's memory peaks.
func (p *deviceProc) run() (deviceEvent, procPeak, error) {
	if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
		return deviceEvent{}, procPeak{}, fmt.Errorf("device process: %w", err)
	}
	ev, err := p.next()
	mem := p.mem()
	_ = p.stdin.Close()
	return ev, mem, errors.Join(err, p.cmd.Wait())
}

// sampleProc samples pid's memory every 50ms until the returned func is
// called (the same result on later calls).
func sampleProc(pid int) func() procPeak {
	path := filepath.Join("/proc", strconv.Itoa(pid), "status")
	stat := filepath.Join("/proc", strconv.Itoa(pid), "stat")
	stop, res := make(chan struct{}), make(chan procPeak, 1)
	go func() {
		var p procPeak
		cpu0 := procCPU(stat)
		sample := func() {
			if c := procCPU(stat); c > 0 {
				p.CPU = c - cpu0
			}
			anon, rss, hwm := procFileStatus(path, "RssAnon:"), procFileStatus(path, "VmRSS:"), procFileStatus(path, "VmHWM:")
			p.AnonRSS, p.RSS, p.HWM = max(p.AnonRSS, anon), max(p.RSS, rss), max(p.HWM, hwm)
			if rss > 0 {
				p.Last = rss
			}
		}
		sample()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sample()
			case <-stop:
				sample()
				res <- p
				return
			}
		}
	}()
	var once sync.Once
	var p procPeak
	return func() procPeak {
		once.Do(func() { close(stop); p = <-res })
		return p
	}
}

// deviceCommand is the command that runs the device process, nil when it
// runs in this process.
func (o *ReplicateOptions) deviceSpec(mode string, cfg rigConfig, url string) DeviceSpec {
	return DeviceSpec{Mode: mode, Dir: cfg.dir, URL: url, Durability: cfg.durability, Delay: cfg.delay,
		Memory: o.DeviceMemory, MemLimit: o.DeviceMemLimit, Changes: o.Changes, Writers: o.Writers, TxSize: o.TxSize,
		Offline: o.Offline, Live: o.Live, Idle: o.Idle, HeapProfile: o.DeviceHeapProfile, Cgroup: o.DeviceCgroup}
}

func stderrOr(w io.Writer) io.Writer {
	if w == nil {
		return os.Stderr
	}
	return w
}

// sustainedProc is sustained with the device in a process of its own: it
// returns the rate until Sync, the writers' own rate, and the memory peaks
// of the device process and of this one (broker and cloud).
func (rg *rig) sustainedProc(ctx context.Context, o *ReplicateOptions) (rate, wrate float64, dev, self procPeak, err error) {
	cloud, err := rg.startCloud(ctx)
	if err != nil {
		return 0, 0, dev, self, err
	}
	defer func() { err = errors.Join(err, shutdown(context.Background(), cloud)) }()
	applied := countApplied(cloud)
	p, _, err := startDeviceProc(ctx, o.DeviceCommand, o.deviceSpec("p3", rg.cfg, rg.url), stderrOr(o.Stderr))
	if err != nil {
		return 0, 0, dev, self, err
	}
	stopSelf := sampleProc(os.Getpid())
	done, dev, err := p.run()
	self = stopSelf()
	if err != nil {
		return 0, 0, dev, self, err
	}
	if applied.Load() != int64(o.Changes) {
		err = fmt.Errorf("the cloud applied %d changes, want %d", applied.Load(), o.Changes)
	}
	return float64(o.Changes) / done.Seconds, done.WriteRate, dev, self, err
}

// maxPeak keeps the higher of each figure.
func maxPeak(a, b procPeak) procPeak {
	return procPeak{AnonRSS: max(a.AnonRSS, b.AnonRSS), RSS: max(a.RSS, b.RSS), HWM: max(a.HWM, b.HWM), Last: max(a.Last, b.Last), CPU: max(a.CPU, b.CPU)}
}

// runP8 starts the device process, replicates one change, leaves it idle
// for o.Idle and reports its resident set at the end and its peaks.
func runP8(ctx context.Context, o *ReplicateOptions, cfg rigConfig) (err error) {
	rg, err := startRig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rg.close(context.Background())) }()
	cloud, err := rg.startCloud(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, shutdown(context.Background(), cloud)) }()
	spec := o.deviceSpec("idle", rg.cfg, rg.url)
	p, _, err := startDeviceProc(ctx, o.DeviceCommand, spec, stderrOr(o.Stderr))
	if err != nil {
		return err
	}
	done, mem, err := p.run()
	if err != nil {
		return err
	}
	o.report.P8 = &struct {
		IdleSeconds float64
		Device      procPeak
		PageBytes   int
	}{IdleSeconds: done.Seconds, Device: mem, PageBytes: done.PageBytes}
	fmt.Fprintf(o.text, "\nP8 idle device: the device process connected, replicated one change, served its API with the status page\n"+
		"  (api.ui, as iotod run on loopback; GET / once: %d bytes), then idle for %s\n", done.PageBytes, spec.Idle)
	fmt.Fprintf(o.text, "  resident set at the end        %s whole RSS (bar: <= 25 MB after 10 minutes); %s anonymous at the end\n", mib(mem.Last), mib(done.AnonRSS))
	fmt.Fprintf(o.text, "  peaks                          %s whole RSS, %s anonymous; Go heap in use at the end %s\n", mib(mem.RSS), mib(mem.AnonRSS), mib(int64(done.HeapInuse)))
	return nil
}

// profileHeapPeaks writes a heap profile to path whenever the heap in use
// reaches a new high, checking every 200ms and writing at most every 2s,
// until the returned func is called.
func profileHeapPeaks(path string) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var top uint64
		var last time.Time
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			var m runtimeMem
			m.read()
			if m.heapInuse <= top || time.Since(last) < 2*time.Second {
				continue
			}
			top, last = m.heapInuse, time.Now()
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				_ = f.Close()
			}
		}
	}()
	return func() { close(stop); <-done }
}
