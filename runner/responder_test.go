package runner

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// A device flooding the cloud with sync requests gets its catch-ups
// coalesced (one running, the latest waiting), and another device's
// catch-up is answered at once all the same.
func TestSyncRequestFloodIsCoalescedAndOthersAreServed(t *testing.T) {
	ctx := context.Background()
	cloudPlan, _ := split(t)
	cloudPlan.Pipelines = []PipelinePlan{cloudPlan.Pipelines[1]} // the down sender answers sync requests
	cloud := start(t, cloudPlan)
	for i := 0; i < 200; i++ {
		_, err := cloud.DB("cloud").Create(ctx, "Account", db.Item{"name": "broadcast"}, nil)
		require.NoError(t, err)
	}
	bus := cloud.transports["bus"].t
	markers := func(site string) <-chan *pipeline.Batch {
		msgs, err := bus.Subscribe(ctx, pipeline.ChanDown, site)
		require.NoError(t, err)
		out := make(chan *pipeline.Batch, 1000)
		go func() {
			for msg := range msgs {
				msg.Ack()
				var b pipeline.Batch
				if json.Unmarshal(msg.Payload, &b) == nil && b.Kind == pipeline.KindSynced {
					out <- &b
				}
			}
		}()
		return out
	}
	flooder, other := markers("dev1"), markers("dev2")
	ask := func(site string, full bool) string {
		req := pipeline.SyncRequest{V: 1, ID: ulid.Make().String(), Full: full}
		payload, _ := json.Marshal(req)
		require.NoError(t, bus.Publish(ctx, pipeline.ChanSync, site, message.NewMessage(req.ID, payload)))
		return req.ID
	}
	var last string
	flood := time.Now()
	for i := 0; i < 300; i++ {
		last = ask("dev1", true)
	}
	floodTook := time.Since(flood)
	t0 := time.Now()
	want := ask("dev2", true)
	select {
	case b := <-other:
		assert.Equal(t, want, b.Request)
		assert.Equal(t, 200, b.Count)
		t.Logf("dev2's catch-up answered %s after dev1's 300 requests", time.Since(t0))
	case <-time.After(5 * time.Second):
		t.Fatal("dev2's catch-up was not answered during dev1's flood")
	}
	var got []string
	deadline := time.After(5 * time.Second)
	for len(got) == 0 || got[len(got)-1] != last {
		select {
		case b := <-flooder:
			got = append(got, b.Request)
		case <-deadline:
			t.Fatalf("dev1's latest request was never answered; answered %d", len(got))
		}
	}
	// One catch-up at once, each at least a second after the last
	// started: from the flood's start to the last answer, at most one
	// per second, plus the first.
	took := time.Since(flood)
	most := 2 + int(took/time.Second)
	t.Logf("300 requests sent in %s, answered by %d catch-ups within %s", floodTook, len(got), took)
	assert.LessOrEqual(t, len(got), most, "300 requests from one device run at most a few catch-ups")
	assert.GreaterOrEqual(t, testutil.ToFloat64(cloud.m.syncRequests.WithLabelValues("down", "coalesced")), 290.0)
}

// A catch-up goes at the device's pace: the cloud has at most its window
// of catch-up batches (4) sent and not acknowledged by the device, sends
// the next as each ack comes, and gets every change and the marker
// through once the device acks.
func TestCatchUpIsPacedByTheDevicesAcks(t *testing.T) {
	ctx := context.Background()
	cloudPlan, _ := split(t)
	cloudPlan.Pipelines = []PipelinePlan{cloudPlan.Pipelines[1]} // the down sender answers sync requests
	cloud := start(t, cloudPlan)
	const items = 3000 // 6 batches of 500
	for i := 0; i < items; i++ {
		_, err := cloud.DB("cloud").Create(ctx, "Account", db.Item{"name": "broadcast"}, nil)
		require.NoError(t, err)
	}
	bus := cloud.transports["bus"].t
	msgs, err := bus.Subscribe(ctx, pipeline.ChanDown, "dev1")
	require.NoError(t, err)
	got := make(chan *pipeline.Batch, 100)
	go func() {
		for msg := range msgs {
			msg.Ack() // taken off the transport, not acknowledged to the cloud
			var b pipeline.Batch
			if json.Unmarshal(msg.Payload, &b) == nil && b.CatchUp {
				got <- &b
			}
		}
	}()
	ackBatch := func(b *pipeline.Batch) {
		payload, _ := json.Marshal(pipeline.Ack{V: 1, Batch: b.ID, Applied: len(b.Changes)})
		require.NoError(t, bus.Publish(ctx, pipeline.ChanDownAck, "dev1", message.NewMessage(ulid.Make().String(), payload)))
	}
	req := pipeline.SyncRequest{V: 1, ID: ulid.Make().String(), Full: true}
	payload, _ := json.Marshal(req)
	require.NoError(t, bus.Publish(ctx, pipeline.ChanSync, "dev1", message.NewMessage(req.ID, payload)))

	var batches []*pipeline.Batch
	next := func(d time.Duration) *pipeline.Batch {
		select {
		case b := <-got:
			batches = append(batches, b)
			return b
		case <-time.After(d):
			return nil
		}
	}
	for range 4 {
		require.NotNil(t, next(5*time.Second), "the window's first batches")
	}
	require.Nil(t, next(500*time.Millisecond), "no fifth batch before an ack")
	ackBatch(batches[0])
	require.NotNil(t, next(5*time.Second), "an ack lets one more go")
	require.Nil(t, next(300*time.Millisecond), "only one")
	for _, b := range batches[1:] {
		ackBatch(b)
	}
	changes := 0
	for _, b := range batches {
		changes += len(b.Changes)
	}
	for {
		b := next(5 * time.Second)
		require.NotNil(t, b, "the catch-up goes on as acks come: %d changes so far", changes)
		if b.Kind == pipeline.KindSynced {
			assert.Equal(t, items, b.Count)
			break
		}
		changes += len(b.Changes)
		ackBatch(b)
	}
	assert.Equal(t, items, changes)
}

// A device that never acknowledges its catch-up batches has each catch-up
// ended after the stall time, and waits twice as long again before each
// next one (the slot is not held meanwhile): a flood of its requests
// starts few catch-ups. Once it acknowledges, its catch-up completes and
// the wait is forgotten.
func TestStalledCatchUpsBackOff(t *testing.T) {
	ctx := context.Background()
	cloudPlan, _ := split(t)
	cloudPlan.Pipelines = []PipelinePlan{cloudPlan.Pipelines[1]}
	cloud, err := New(cloudPlan, Options{})
	require.NoError(t, err)
	require.NoError(t, cloud.Open(ctx))
	rs := cloud.units[0].responder
	rs.ackStall, rs.minInterval, rs.maxStallWait = 300*time.Millisecond, 100*time.Millisecond, 10*time.Second
	require.NoError(t, cloud.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = cloud.Shutdown(sctx)
	})
	for i := 0; i < 3000; i++ {
		_, err := cloud.DB("cloud").Create(ctx, "Account", db.Item{"name": "broadcast"}, nil)
		require.NoError(t, err)
	}
	bus := cloud.transports["bus"].t
	msgs, err := bus.Subscribe(ctx, pipeline.ChanDown, "dev1")
	require.NoError(t, err)
	var mu sync.Mutex
	acking := false
	requests := map[string]bool{} // catch-ups started (by request id)
	synced := make(chan string, 10)
	go func() {
		for msg := range msgs {
			msg.Ack()
			var b pipeline.Batch
			if json.Unmarshal(msg.Payload, &b) != nil || !b.CatchUp {
				continue
			}
			if b.Kind == pipeline.KindSynced {
				synced <- b.Request
				continue
			}
			mu.Lock()
			requests[b.Request] = true
			ack := acking
			mu.Unlock()
			if ack {
				payload, _ := json.Marshal(pipeline.Ack{V: 1, Batch: b.ID, Applied: len(b.Changes)})
				_ = bus.Publish(ctx, pipeline.ChanDownAck, "dev1", message.NewMessage(ulid.Make().String(), payload))
			}
		}
	}()
	ask := func() {
		req := pipeline.SyncRequest{V: 1, ID: ulid.Make().String(), Full: true}
		payload, _ := json.Marshal(req)
		require.NoError(t, bus.Publish(ctx, pipeline.ChanSync, "dev1", message.NewMessage(req.ID, payload)))
	}
	flood := time.Now()
	for time.Since(flood) < 3*time.Second {
		ask()
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	started := len(requests)
	mu.Unlock()
	stalled := testutil.ToFloat64(cloud.m.syncRequests.WithLabelValues("down", "stalled"))
	t.Logf("3 s of requests every 50 ms from a device that never acks: %d catch-ups started, %v stalled", started, stalled)
	assert.GreaterOrEqual(t, stalled, 2.0)
	assert.LessOrEqual(t, started, 5, "waits of 0.2, 0.4, 0.8, 1.6 s after stalls of 0.3 s: at most 5 in 3 s (without them, about 7)")

	mu.Lock()
	acking = true
	mu.Unlock()
	ask()
	select {
	case <-synced:
	case <-time.After(15 * time.Second):
		t.Fatal("the device that acks now never got its catch-up through")
	}
	require.Eventually(t, func() bool {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		return rs.stalls["dev1"] == 0
	}, 2*time.Second, 10*time.Millisecond, "a completed catch-up forgets the stalls")
}
