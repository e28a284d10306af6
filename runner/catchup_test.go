package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// sharedBus hands every runner the same transport, so a cloud runner and
// device runners in one test talk as separate processes would.
type sharedBus struct {
	pipeline.Factory
	t pipeline.Transport
}

type keepOpen struct{ pipeline.Transport }

func (keepOpen) Close(context.Context) error { return nil }

func (s *sharedBus) Create(ctx context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	if s.t == nil {
		t, err := s.Factory.Create(ctx, set, cfg)
		if err != nil {
			return nil, err
		}
		s.t = t.(pipeline.Transport)
	}
	return keepOpen{s.t}, nil
}

// split turns the all-in-one plan into a cloud plan and a device plan
// over one shared bus.
func split(t *testing.T) (cloud, device Plan) {
	plan := allInOne(t)
	bus := &sharedBus{Factory: plan.Transports["bus"].Factory}
	plan.Transports["bus"] = ComponentPlan{Factory: bus, Config: plan.Transports["bus"].Config}
	cloud, device = plan, plan
	cloud.Storage = map[string]StoragePlan{"cloud": plan.Storage["cloud"]}
	cloud.Pipelines = []PipelinePlan{plan.Pipelines[1], plan.Pipelines[2]}
	device.Storage = map[string]StoragePlan{"local": plan.Storage["local"]}
	device.Pipelines = []PipelinePlan{plan.Pipelines[0], plan.Pipelines[3]}
	return cloud, device
}

func TestDeviceCatchesUpOnWhatChangedWhileOffline(t *testing.T) {
	ctx := context.Background()
	cloudPlan, devPlan := split(t)
	cloud := start(t, cloudPlan)
	c := cloud.DB("cloud")
	for i := 0; i < 30; i++ {
		_, err := c.Create(ctx, "Account", db.Item{"name": "broadcast"}, nil)
		require.NoError(t, err)
	}
	for i := 0; i < 5; i++ {
		_, err := c.Create(ctx, "Command", db.Item{"deviceId": "dev1", "command": "reboot"}, nil)
		require.NoError(t, err)
		_, err = c.Create(ctx, "Command", db.Item{"deviceId": "dev2", "command": "reboot"}, nil)
		require.NoError(t, err)
	}

	dev := start(t, devPlan) // comes online: catch-up on start, and Sync waits for one
	require.NoError(t, dev.Sync(syncCtx(t)))
	d := dev.DB("local")
	accounts, err := d.Find(ctx, "Account", db.Item{}, nil)
	require.NoError(t, err)
	require.Len(t, accounts.Items, 30)
	mine, err := d.Find(ctx, "Command", db.Item{"deviceId": "dev1"}, nil)
	require.NoError(t, err)
	require.Len(t, mine.Items, 5, "its own commands")
	others, err := d.Find(ctx, "Command", db.Item{"deviceId": "dev2"}, nil)
	require.NoError(t, err)
	require.Empty(t, others.Items, "never another device's items")
	cursor, err := d.GetMeta(ctx, cursorMeta)
	require.NoError(t, err)
	require.NotEmpty(t, cursor, "the cursor moved")

	// A later catch-up sends only what changed since the cursor.
	var before int64
	for _, p := range dev.Status().Pipelines {
		if p.Name == "apply" {
			before = p.CatchUpChanges
		}
	}
	_, err = c.Create(ctx, "Account", db.Item{"name": "late"}, nil)
	require.NoError(t, err)
	require.NoError(t, dev.Sync(syncCtx(t)))
	var after int64
	for _, p := range dev.Status().Pipelines {
		if p.Name == "apply" {
			after = p.CatchUpChanges
		}
	}
	require.LessOrEqual(t, after-before, int64(2), "only the new change (twice at most: once live, once caught up)")
	accounts, err = d.Find(ctx, "Account", db.Item{}, nil)
	require.NoError(t, err)
	require.Len(t, accounts.Items, 31)
}

func TestCloudRefusesADevicesChangeToAnotherDevicesItem(t *testing.T) {
	ctx := context.Background()
	r := start(t, allInOne(t))
	bus := r.transports["bus"].t
	acks, err := bus.Subscribe(ctx, pipeline.ChanUpAck, "dev1")
	require.NoError(t, err)
	item, _ := json.Marshal(map[string]any{"pk": "reading#dev2", "sk": "reading#00000001", "deviceId": "dev2", "seq": 1, "updated": "2026-01-01T00:00:00.000Z"})
	b := pipeline.Batch{V: 1, ID: "hijack", Site: "dev1", Changes: []pipeline.Change{{Model: "Reading", Op: pipeline.OpUpsert,
		Key: pipeline.Key{PK: "reading#dev2", SK: "reading#00000001"}, Item: item, Version: pipeline.Version{Wall: 5, Origin: "dev1"}, Origin: "dev1"}}}
	payload, _ := json.Marshal(b)
	require.NoError(t, bus.Publish(ctx, pipeline.ChanUp, "dev1", message.NewMessage("m", payload)))
	for {
		select {
		case msg := <-acks:
			msg.Ack()
			var ack pipeline.Ack
			require.NoError(t, json.Unmarshal(msg.Payload, &ack))
			if ack.Batch != "hijack" {
				continue
			}
			require.Len(t, ack.Rejected, 1)
			require.Contains(t, ack.Rejected[0].Reason, `belongs to "dev2", not to the sending site "dev1"`)
			_, err = r.DB("cloud").Get(ctx, "Reading", db.Item{"deviceId": "dev2", "seq": 1}, nil)
			require.ErrorIs(t, err, pipeline.ErrNotFound)
			return
		case <-time.After(5 * time.Second):
			t.Fatal("no ack")
		}
	}
}

func TestGapInLiveBatchesTriggersCatchUp(t *testing.T) {
	c := newCatchUp("apply", "dev1", nil, nil, discard())
	ctx := context.Background()
	v := func(w int64) string { return pipeline.Version{Wall: w, Origin: "cloud"}.String() }
	c.seen(ctx, "dev1", &pipeline.Batch{After: v(10)}, 1)
	c.seen(ctx, "dev1", &pipeline.Batch{Before: v(10), After: v(20)}, 1)
	active, _ := c.progress()
	require.False(t, active, "contiguous batches: no gap")
	c.seen(ctx, "dev1", &pipeline.Batch{Before: v(30), After: v(40)}, 1) // 20..30 never arrived
	active, _ = c.progress()
	require.True(t, active, "a gap asks for a catch-up")
}

// A catch-up longer than the cloud's ack window (4 batches of 500) goes
// through: the device acknowledges each catch-up batch, which opens the
// window for the next. Unacknowledged, the catch-up would stall after 4
// batches every time and never arrive whole.
func TestLongCatchUpIsPacedByTheDevicesAcks(t *testing.T) {
	ctx := context.Background()
	cloudPlan, devPlan := split(t)
	cloud := start(t, cloudPlan)
	c := cloud.DB("cloud")
	const commands = 2600 // 6 catch-up batches
	for i := range commands {
		_, err := c.Create(ctx, "Command", db.Item{"deviceId": "dev1", "command": fmt.Sprint("set-", i)}, nil)
		require.NoError(t, err)
	}
	dev := start(t, devPlan)
	require.NoError(t, dev.Sync(syncCtx(t)), "the catch-up arrived whole")
	mine, err := dev.DB("local").Find(ctx, "Command", db.Item{"deviceId": "dev1"}, &db.Params{Count: true})
	require.NoError(t, err)
	require.Equal(t, commands, mine.Count)
	cursor, err := dev.DB("local").GetMeta(ctx, cursorMeta)
	require.NoError(t, err)
	require.NotEmpty(t, cursor, "the cursor moved")
}

// flappy is a transport whose connection went and came back between two
// looks at Connected (it counts the changes, as mqtt does).
type flappy struct {
	pipeline.Transport
	changes atomic.Uint64
	asked   atomic.Int32
}

func (f *flappy) Connected() bool           { return true }
func (f *flappy) ConnectionChanges() uint64 { return f.changes.Load() }

func (f *flappy) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	if ch == pipeline.ChanSync {
		f.asked.Add(1)
	}
	return f.Transport.Publish(ctx, ch, site, msg)
}

// A device asks for a catch-up again when its connection went and came
// back within a second, though it never saw it down: a broker restarted
// that fast lost what it queued for the device.
func TestCatchUpAsksAgainAfterAQuickReconnect(t *testing.T) {
	r := start(t, allInOne(t))
	f := &flappy{Transport: r.transports["bus"].t}
	ctx, cancel := context.WithCancel(context.Background())
	c := newCatchUp("apply", "dev1", f, r.DB("local"), slog.New(slog.DiscardHandler))
	c.start(ctx)
	t.Cleanup(func() { cancel(); <-c.done })
	require.Eventually(t, func() bool { return f.asked.Load() == 1 }, 5*time.Second, 10*time.Millisecond, "asked at start")
	time.Sleep(1500 * time.Millisecond)
	require.Equal(t, int32(1), f.asked.Load(), "not again while the connection stays")
	f.changes.Add(2) // down and up again between two looks
	require.Eventually(t, func() bool { return f.asked.Load() == 2 }, 5*time.Second, 10*time.Millisecond, "asked after the reconnect")
}
