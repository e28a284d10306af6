package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/iotod/iotod/db"
)

// liveRate is the pace of the local creates timed during the drain.
const liveRate = 50

// runP5 queues o.Offline changes on the device store alone, then starts
// the cloud and the device and times the drain, sampling the anonymous RSS
// and timing local creates made during it. With o.DeviceCommand the device
// (queueing, draining, live creates) runs in a process of its own, whose
// memory is sampled apart from this one's (broker and cloud). Baselines:
// raw paho publishes of one message per change (the same count at the
// measured rate), and the same local creates once the pipelines are idle.
func runP5(ctx context.Context, o *ReplicateOptions, cfg rigConfig) (err error) {
	rg, err := startRig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rg.close(context.Background())) }()
	raw, err := rg.rawPublish(ctx, o.RawMessages, 1)
	if err != nil {
		return err
	}
	var res p5Result
	if o.DeviceCommand != nil {
		res, err = rg.catchUpProc(ctx, o)
	} else {
		res, err = rg.catchUp(ctx, o)
	}
	if err != nil {
		return err
	}
	o.report.P5 = &struct {
		Changes          int
		QueuedSeconds    float64
		DrainSeconds     float64
		Raw1             float64
		During, Idle     Dist
		Device           *procPeak `json:",omitempty"`
		DeviceHeapInuse  uint64    `json:",omitempty"`
		Process          procPeak
		ProcessBeforeRSS int64
	}{Changes: o.Offline, QueuedSeconds: res.queued.Seconds(), DrainSeconds: res.drain.Seconds(), Raw1: raw,
		During: res.during, Idle: res.idle, Device: res.device, DeviceHeapInuse: res.deviceHeap,
		Process: res.self, ProcessBeforeRSS: res.before}

	w := o.text
	fmt.Fprintf(w, "\nP5 catch-up: %d changes queued offline on the device (in %s), then the cloud and the device start\n", o.Offline, res.queued.Round(time.Second/10))
	fmt.Fprintf(w, "  drained (start -> Sync)        %9.1f s  = %.0f changes/s, every change applied in the cloud and acked\n", res.drain.Seconds(), float64(o.Offline)/res.drain.Seconds())
	fmt.Fprintf(w, "  raw paho QoS 1, 1 publisher    %9.1f s  for as many messages at its %.0f msgs/s (%d sent)\n", float64(o.Offline)/raw, raw, o.RawMessages)
	fmt.Fprintf(w, "  ratio to 1 publisher           %9.1fx   (bar: drained <= 120 s)\n", float64(o.Offline)/raw/res.drain.Seconds())
	if res.device != nil {
		fmt.Fprintf(w, "  device process memory          %s anonymous RSS, %s whole RSS (peaks during the drain; bar: <= 64 MB);\n"+
			"                                 Go heap in use at the end %s\n", mib(res.device.AnonRSS), mib(res.device.RSS), mib(int64(res.deviceHeap)))
		fmt.Fprintf(w, "    while queueing               %s anonymous RSS, %s whole RSS (peaks)\n", mib(res.queueing.AnonRSS), mib(res.queueing.RSS))
		fmt.Fprintf(w, "  this process (broker, cloud)   %s anonymous RSS peak (%s before start)\n", mib(res.self.AnonRSS), mib(res.before))
	} else {
		fmt.Fprintf(w, "  memory during the drain        %s anonymous RSS peak (%s before start); whole process: broker, device and cloud\n", mib(res.self.AnonRSS), mib(res.before))
		fmt.Fprintf(w, "    (bar: device <= 64MB; this process holds both sides and the broker)\n")
	}
	fmt.Fprintf(w, "  live creates during the drain  %s  (%d at %d/s)\n", res.during, res.during.N, liveRate)
	fmt.Fprintf(w, "  same creates, pipelines idle   %s  (%d, after the drain)\n", res.idle, res.idle.N)
	return nil
}

// p5Result is what a catch-up measured.
type p5Result struct {
	queued, drain    time.Duration
	during, idle     Dist
	self             procPeak  // this process during the drain
	before           int64     // this process's anonymous RSS before the start
	device, queueing *procPeak // the device process, when it has its own
	deviceHeap       uint64
}

// catchUp runs P5 with the device in this process.
func (rg *rig) catchUp(ctx context.Context, o *ReplicateOptions) (res p5Result, err error) {
	t0 := time.Now()
	if err := rg.queueOffline(ctx, o.Offline); err != nil {
		return res, err
	}
	res.queued = time.Since(t0)
	debug.FreeOSMemory()
	res.before = anonRSSBytes()

	stopRSS := sampleRSS()
	defer stopRSS()
	start := time.Now()
	cloud, err := rg.startCloud(ctx)
	if err != nil {
		return res, err
	}
	dev, err := rg.startDevice(ctx)
	if err != nil {
		return res, errors.Join(err, shutdown(ctx, cloud))
	}
	defer func() { err = errors.Join(err, shutdown(context.Background(), dev, cloud)) }()
	applied := countApplied(cloud)
	drained := make(chan struct{})
	liveDone := make(chan error, 1)
	var during latencies
	go func() { liveDone <- liveWrites(ctx, dev.db, "live", o.Live, drained, &during) }()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	err = dev.r.Sync(sctx)
	cancel()
	res.drain = time.Since(start)
	close(drained)
	res.self.AnonRSS = stopRSS()
	if err = errors.Join(err, <-liveDone); err != nil {
		return res, err
	}
	if applied.Load() < int64(o.Offline) {
		return res, fmt.Errorf("the cloud applied %d changes, want at least %d", applied.Load(), o.Offline)
	}
	var idle latencies
	if err := liveWrites(ctx, dev.db, "idle", min(o.Live, 200), nil, &idle); err != nil {
		return res, err
	}
	res.during, res.idle = during.dist(), idle.dist()
	return res, nil
}

// catchUpProc runs P5 with the device in a process of its own: it queues,
// then this process starts the cloud and tells the device to start.
func (rg *rig) catchUpProc(ctx context.Context, o *ReplicateOptions) (res p5Result, err error) {
	p, ready, err := startDeviceProc(ctx, o.DeviceCommand, o.deviceSpec("p5", rg.cfg, rg.url), stderrOr(o.Stderr))
	if err != nil {
		return res, err
	}
	res.queued = time.Duration(ready.Queued * float64(time.Second))
	q := p.mem()
	res.queueing = &q
	p.mem = sampleProc(p.cmd.Process.Pid) // the drain's own peaks
	debug.FreeOSMemory()
	res.before = anonRSSBytes()
	stopRSS := sampleRSS()
	defer stopRSS()
	start := time.Now()
	cloud, err := rg.startCloud(ctx)
	if err != nil {
		_ = p.cmd.Process.Kill()
		return res, errors.Join(err, p.cmd.Wait())
	}
	defer func() { err = errors.Join(err, shutdown(context.Background(), cloud)) }()
	applied := countApplied(cloud)
	done, dev, err := p.run()
	res.drain = time.Since(start) // as the device measures it, plus the cloud's start
	if done.Seconds > 0 {
		res.drain = time.Duration(done.Seconds * float64(time.Second))
	}
	res.self.AnonRSS = stopRSS()
	if err != nil {
		return res, err
	}
	res.device, res.deviceHeap = &dev, done.HeapInuse
	if applied.Load() < int64(o.Offline) {
		return res, fmt.Errorf("the cloud applied %d changes, want at least %d", applied.Load(), o.Offline)
	}
	if done.During != nil {
		res.during = *done.During
	}
	if done.Idle != nil {
		res.idle = *done.Idle
	}
	return res, nil
}

// countApplied counts the Bench changes the cloud applies from the device.
func countApplied(cloud *side) *atomic.Int64 {
	var applied atomic.Int64
	cloud.db.OnChange("Bench", func(_ context.Context, ev db.Event) {
		if ev.Remote {
			applied.Add(1)
		}
	})
	return &applied
}

// liveWrites creates up to n items one at a time at liveRate, timing each,
// until stop closes (nil: all n).
func liveWrites(ctx context.Context, d *db.DB, part string, n int, stop <-chan struct{}, lat *latencies) error {
	period := time.Second / liveRate
	tick := time.NewTicker(period)
	defer tick.Stop()
	for i := range n {
		select {
		case <-tick.C:
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		t0 := time.Now()
		if _, err := d.Create(ctx, "Bench", benchItem(part, i), nil); err != nil {
			return fmt.Errorf("live create %d: %w", i, err)
		}
		lat.add([]time.Duration{time.Since(t0)})
	}
	return nil
}
