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
// the cloud and the device and times the drain, sampling the process's
// anonymous RSS and timing local creates made during it. Baselines: raw
// paho publishes of one message per change (the same count at the
// measured rate), and the same local creates once the pipelines are idle.
func runP5(ctx context.Context, o ReplicateOptions, cfg rigConfig) (err error) {
	rg, err := startRig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rg.close(context.Background())) }()
	raw, err := rg.rawPublish(ctx, o.RawMessages, 1)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := rg.queueOffline(ctx, o.Offline); err != nil {
		return err
	}
	queued := time.Since(t0)
	debug.FreeOSMemory()
	before := anonRSSBytes()

	stopRSS := sampleRSS()
	defer stopRSS()
	start := time.Now()
	cloud, err := rg.startCloud(ctx)
	if err != nil {
		return err
	}
	dev, err := rg.startDevice(ctx)
	if err != nil {
		return errors.Join(err, shutdown(ctx, cloud))
	}
	defer func() { err = errors.Join(err, shutdown(context.Background(), dev, cloud)) }()
	var applied atomic.Int64
	cloud.db.OnChange("Bench", func(_ context.Context, ev db.Event) {
		if ev.Remote {
			applied.Add(1)
		}
	})
	drained := make(chan struct{})
	liveDone := make(chan error, 1)
	var during latencies
	go func() { liveDone <- liveWrites(ctx, dev.db, "live", o.Live, drained, &during) }()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	err = dev.r.Sync(sctx)
	cancel()
	drain := time.Since(start)
	close(drained)
	peak := stopRSS()
	if err = errors.Join(err, <-liveDone); err != nil {
		return err
	}
	if applied.Load() < int64(o.Offline) {
		return fmt.Errorf("the cloud applied %d changes, want at least %d", applied.Load(), o.Offline)
	}
	var idle latencies
	if err := liveWrites(ctx, dev.db, "idle", min(o.Live, 200), nil, &idle); err != nil {
		return err
	}

	w := o.Out
	fmt.Fprintf(w, "\nP5 catch-up: %d changes queued offline on the device (in %s), then the cloud and the device start\n", o.Offline, queued.Round(time.Second/10))
	fmt.Fprintf(w, "  drained (start -> Sync)        %9.1f s  = %.0f changes/s, every change applied in the cloud and acked\n", drain.Seconds(), float64(o.Offline)/drain.Seconds())
	fmt.Fprintf(w, "  raw paho QoS 1, 1 publisher    %9.1f s  for as many messages at its %.0f msgs/s (%d sent)\n", float64(o.Offline)/raw, raw, o.RawMessages)
	fmt.Fprintf(w, "  ratio to 1 publisher           %9.1fx   (bar: drained <= 120 s)\n", float64(o.Offline)/raw/drain.Seconds())
	fmt.Fprintf(w, "  memory during the drain        %s anonymous RSS peak (%s before start); whole process: broker, device and cloud\n", mib(peak), mib(before))
	fmt.Fprintf(w, "    (bar: device <= 64MB; this process holds both sides and the broker)\n")
	fmt.Fprintf(w, "  live creates during the drain  %s  (%d at %d/s)\n", during.dist(), during.dist().N, liveRate)
	fmt.Fprintf(w, "  same creates, pipelines idle   %s  (%d, after the drain)\n", idle.dist(), idle.dist().N)
	return nil
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
