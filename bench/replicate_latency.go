package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/iotod/iotod/db"
)

// runP4 times single changes end to end at a steady rate with the batch
// stages' delay at 20ms: device commit -> applied in the cloud store, and
// cloud commit -> applied in the device store; beside it, raw paho QoS 1
// publish -> delivery through the same broker at the same rate.
func runP4(ctx context.Context, o *ReplicateOptions, cfg rigConfig) (err error) {
	rg, err := startRig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rg.close(context.Background())) }()
	raw, err := rg.rawLatency(ctx, o.Latency, o.Rate)
	if err != nil {
		return err
	}
	cloud, err := rg.startCloud(ctx)
	if err != nil {
		return err
	}
	dev, err := rg.startDevice(ctx)
	if err != nil {
		return errors.Join(err, shutdown(ctx, cloud))
	}
	defer func() { err = errors.Join(err, shutdown(context.Background(), dev, cloud)) }()
	// Connected and caught up before the clock runs.
	if _, err := dev.db.Create(ctx, "Bench", benchItem("warm", 0), nil); err != nil {
		return err
	}
	if err := dev.r.Sync(ctx); err != nil {
		return fmt.Errorf("warm-up sync: %w", err)
	}

	up := newStamps(o.Latency)
	cloud.db.OnChange("Bench", func(_ context.Context, ev db.Event) {
		if i, ok := itemIndex(ev, "lat"); ok {
			up.applied(i)
		}
	})
	var local latencies
	err = paced(ctx, o.Latency, o.Rate, func(i int) error {
		t0 := time.Now()
		_, err := dev.db.Create(ctx, "Bench", benchItem("lat", i), nil)
		up.committed(i)
		local.add([]time.Duration{time.Since(t0)})
		return err
	})
	if err != nil {
		return fmt.Errorf("device writes: %w", err)
	}
	if err := up.wait(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("up: %w", err)
	}

	down := newStamps(o.Down)
	dev.db.OnChange("Command", func(_ context.Context, ev db.Event) {
		if i, ok := itemIndex(ev, deviceSite); ok {
			down.applied(i)
		}
	})
	err = paced(ctx, o.Down, o.Rate, func(i int) error {
		_, err := cloud.db.Create(ctx, "Command", db.Item{"deviceId": deviceSite, "id": fmt.Sprintf("%010d", i), "payload": payload}, nil)
		down.committed(i)
		return err
	})
	if err != nil {
		return fmt.Errorf("cloud writes: %w", err)
	}
	if err := down.wait(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("down: %w", err)
	}

	w := o.text
	u, d := up.dist(), down.dist()
	o.report.P4 = &struct{ Up, Local, Raw, Down Dist }{Up: u, Local: local.dist(), Raw: raw, Down: d}
	fmt.Fprintf(w, "\nP4 latency, batch stages at delay: %s; one writer at %d changes/s\n", p4Delay, o.Rate)
	fmt.Fprintf(w, "  device commit -> applied in the cloud store (%d changes)\n    iotod                        %s\n", u.N, u)
	fmt.Fprintf(w, "    local commit itself          %s (the device's Create)\n", local.dist())
	fmt.Fprintf(w, "  raw paho QoS 1 publish -> delivered, same broker and rate (%d messages)\n    baseline                     %s\n", raw.N, raw)
	fmt.Fprintf(w, "    iotod minus baseline, p50    %s (the batch stage holds a change up to %s)\n", round(u.P50-raw.P50), p4Delay)
	fmt.Fprintf(w, "    (bar: p50 <= 50ms, p99 <= 250ms)\n")
	fmt.Fprintf(w, "  cloud commit -> applied in the device store (%d changes)\n    iotod                        %s\n", d.N, d)
	fmt.Fprintf(w, "    (bar: p99 <= 500ms)\n")
	return nil
}

// stamps pairs the commit and apply times of numbered changes.
type stamps struct {
	commit, apply []atomic.Int64
	left          atomic.Int64
	done          chan struct{}
}

func newStamps(n int) *stamps {
	s := &stamps{commit: make([]atomic.Int64, n), apply: make([]atomic.Int64, n), done: make(chan struct{})}
	s.left.Store(int64(n))
	return s
}

func (s *stamps) committed(i int) { s.commit[i].Store(time.Now().UnixNano()) }

func (s *stamps) applied(i int) {
	if i < 0 || i >= len(s.apply) {
		return
	}
	if s.apply[i].CompareAndSwap(0, time.Now().UnixNano()) && s.left.Add(-1) == 0 {
		close(s.done)
	}
}

func (s *stamps) wait(ctx context.Context, d time.Duration) error {
	select {
	case <-s.done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("%d of %d changes not applied after %s", s.left.Load(), len(s.apply), d)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dist is the distribution of apply - commit (0 when the apply was seen
// before the writer took the time).
func (s *stamps) dist() Dist {
	ds := make([]time.Duration, 0, len(s.commit))
	for i := range s.commit {
		c, a := s.commit[i].Load(), s.apply[i].Load()
		if c != 0 && a != 0 {
			ds = append(ds, time.Duration(max(0, a-c)))
		}
	}
	var l latencies
	l.add(ds)
	return l.dist()
}

// itemIndex reads the number of a remote change's item written by a
// latency writer: its id, when its partition (dev or deviceId) is part.
func itemIndex(ev db.Event, part string) (int, bool) {
	if !ev.Remote || ev.New == nil || (ev.New["dev"] != part && ev.New["deviceId"] != part) {
		return 0, false
	}
	id, _ := ev.New["id"].(string)
	i, err := strconv.Atoi(id)
	return i, err == nil
}

// paced calls op(0..n-1) at rate per second, each at its due time (late
// calls go at once, without bunching the later ones).
func paced(ctx context.Context, n, rate int, op func(i int) error) error {
	period := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * period)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := op(i); err != nil {
			return err
		}
	}
	return nil
}

// rawLatency times n raw QoS 1 publishes, one every 1/rate, from publish
// to delivery at a subscriber, through the rig's broker.
func (r *rig) rawLatency(ctx context.Context, n, rate int) (Dist, error) {
	st := newStamps(n)
	sub, err := r.rawClient(ctx, "bench-raw-sub", cloudUser, cloudPass, func(pr paho.PublishReceived) (bool, error) {
		if len(pr.Packet.Payload) >= 8 {
			st.applied(int(binary.BigEndian.Uint64(pr.Packet.Payload)))
		}
		return true, nil
	})
	if err != nil {
		return Dist{}, err
	}
	defer disconnect(sub)
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: rawTopic, QoS: 1}}}); err != nil {
		return Dist{}, fmt.Errorf("raw subscribe %s: %w", rawTopic, err)
	}
	pub, err := r.rawClient(ctx, "bench-raw-pub", rawSite, rawPass, nil)
	if err != nil {
		return Dist{}, err
	}
	defer disconnect(pub)
	err = paced(ctx, n, rate, func(i int) error {
		p := make([]byte, 200)
		binary.BigEndian.PutUint64(p, uint64(i))
		st.committed(i) // before: the publish returns only after the PUBACK
		_, err := pub.Publish(ctx, &paho.Publish{Topic: rawTopic, QoS: 1, Payload: p})
		return err
	})
	if err != nil {
		return Dist{}, fmt.Errorf("raw publish: %w", err)
	}
	if err := st.wait(ctx, 30*time.Second); err != nil {
		return Dist{}, fmt.Errorf("raw delivery: %w", err)
	}
	return st.dist(), nil
}
