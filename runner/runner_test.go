package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/plugins/transport/inproc"
	"github.com/iotod/iotod/schema"
)

// allInOne is a device and a cloud store in one process over inproc.
func allInOne(t *testing.T, dirs ...string) Plan {
	testenv.NeedBadger(t)
	t.Helper()
	sch, err := schema.Load("../db/testdata/schema.json5")
	require.NoError(t, err)
	if len(dirs) == 0 {
		dirs = []string{t.TempDir(), t.TempDir()}
	}
	store := func(dir string, side schema.Side, site string) StoragePlan {
		cfg := badger.NewDefaultConfig()
		cfg.Path = dir
		return StoragePlan{ComponentPlan: ComponentPlan{Factory: badger.NewFactory(), Config: &cfg}, Side: side, Site: site}
	}
	tf := inproc.NewFactory()
	return Plan{
		Site: "dev1", Schema: sch,
		Storage: map[string]StoragePlan{
			"local": store(dirs[0], schema.SideDevice, "dev1"),
			"cloud": store(dirs[1], schema.SideCloud, "cloud"),
		},
		Transports: map[string]ComponentPlan{"bus": {Factory: tf, Config: tf.NewDefaultConfig()}},
		Pipelines: []PipelinePlan{
			{Name: "up", From: Ref{pipeline.KindStorage, "local"}, To: Ref{pipeline.KindTransport, "bus"}, Direction: pipeline.Up, AckTimeout: 500 * time.Millisecond},
			{Name: "ingest", From: Ref{pipeline.KindTransport, "bus"}, To: Ref{pipeline.KindStorage, "cloud"}, Direction: pipeline.Up},
			{Name: "down", From: Ref{pipeline.KindStorage, "cloud"}, To: Ref{pipeline.KindTransport, "bus"}, Direction: pipeline.Down, AckTimeout: 500 * time.Millisecond},
			{Name: "apply", From: Ref{pipeline.KindTransport, "bus"}, To: Ref{pipeline.KindStorage, "local"}, Direction: pipeline.Down},
		},
	}
}

func start(t *testing.T, plan Plan) *Runner {
	t.Helper()
	r, err := New(plan, Options{})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx) // flights nobody acks would make the drain wait forever
	})
	return r
}

func syncCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestReplicatesBothWaysWithoutEchoes(t *testing.T) {
	ctx := context.Background()
	r := start(t, allInOne(t))
	dev, cloud := r.DB("local"), r.DB("cloud")
	for i := 1; i <= 50; i++ {
		_, err := dev.Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": i, "temp": i}, nil)
		require.NoError(t, err)
	}
	_, err := dev.Create(ctx, "User", db.Item{"accountId": "a1", "email": "d@x", "name": "from-device"}, nil)
	require.NoError(t, err)
	_, err = cloud.Create(ctx, "Account", db.Item{"id": "acc1", "name": "from-cloud"}, nil)
	require.NoError(t, err)
	require.NoError(t, r.Sync(syncCtx(t)))

	res, err := cloud.Find(ctx, "Reading", db.Item{"deviceId": "dev1"}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 50, "every up change reached the cloud")
	got, err := cloud.Get(ctx, "User", db.Item{"accountId": "a1", "email": "d@x"}, nil)
	require.NoError(t, err)
	require.Equal(t, "from-device", got["name"])
	acc, err := dev.Get(ctx, "Account", db.Item{"id": "acc1"}, nil)
	require.NoError(t, err, "the down change reached the device")
	require.Equal(t, "from-cloud", acc["name"])

	for _, name := range []string{"local", "cloud"} {
		st, err := r.stores[name].store.Outbox().Stats(ctx)
		require.NoError(t, err)
		require.Zero(t, st.Depth, "%s outbox trimmed after acks", name)
	}
	// The User change went up, then down again as a broadcast; the device
	// did not apply its own change back, so its version is unchanged.
	local, err := dev.Get(ctx, "User", db.Item{"accountId": "a1", "email": "d@x"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	remote, err := cloud.Get(ctx, "User", db.Item{"accountId": "a1", "email": "d@x"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	require.Equal(t, local[db.VersionAttr], remote[db.VersionAttr])
	st := r.Status()
	require.Len(t, st.Pipelines, 4)
	for _, p := range st.Pipelines {
		require.NotEqual(t, "stopped", p.State, p.Name)
	}
}

func TestPoisonMessagesAreKeptAndServingGoesOn(t *testing.T) {
	ctx := context.Background()
	r := start(t, allInOne(t))
	bus := r.transports["bus"].t
	bad := [][]byte{
		[]byte(`{not json`),
		[]byte(`{"v":99,"id":"b1","changes":[]}`),
		[]byte(`{"v":1,"id":"b2","changes":[{"model":"Reading","op":"explode","key":{"pk":"x","sk":"y"}}]}`),
	}
	for i, p := range bad {
		require.NoError(t, bus.Publish(ctx, pipeline.ChanUp, "dev1", message.NewMessage(fmt.Sprint("bad", i), p)))
	}
	_, err := r.DB("local").Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.NoError(t, err)
	require.NoError(t, r.Sync(syncCtx(t)))
	_, err = r.DB("cloud").Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.NoError(t, err, "the receiver kept serving after poison")
	letters, total := r.DeadLetters().Recent()
	require.EqualValues(t, 3, total)
	reasons := ""
	for _, l := range letters {
		reasons += l.Reject.Reason + "\n"
	}
	require.Contains(t, reasons, "not valid JSON")
	require.Contains(t, reasons, "unknown protocol version 99")
	require.Contains(t, reasons, `unknown op "explode"`)
}

func TestForgedOriginIsRejectedAndAcked(t *testing.T) {
	ctx := context.Background()
	r := start(t, allInOne(t))
	bus := r.transports["bus"].t
	acks, err := bus.Subscribe(ctx, pipeline.ChanUpAck, "dev9")
	require.NoError(t, err)
	item, _ := json.Marshal(map[string]any{"pk": "reading#dev1", "sk": "reading#00000001", "deviceId": "dev1", "seq": 1})
	b := pipeline.Batch{V: 1, ID: "forged", Site: "dev1", Changes: []pipeline.Change{{Model: "Reading", Op: pipeline.OpCreate,
		Key: pipeline.Key{PK: "reading#dev1", SK: "reading#00000001"}, Item: item, Version: pipeline.Version{Wall: 1, Origin: "dev1"}, Origin: "dev1"}}}
	payload, _ := json.Marshal(b)
	// dev9 publishes a change claiming to come from dev1.
	require.NoError(t, bus.Publish(ctx, pipeline.ChanUp, "dev9", message.NewMessage("m1", payload)))
	select {
	case msg := <-acks:
		msg.Ack()
		var ack pipeline.Ack
		require.NoError(t, json.Unmarshal(msg.Payload, &ack))
		require.Equal(t, "forged", ack.Batch)
		require.Len(t, ack.Rejected, 1)
		require.Contains(t, ack.Rejected[0].Reason, `origin "dev1" is not the sending site "dev9"`)
	case <-time.After(5 * time.Second):
		t.Fatal("no ack for the forged batch")
	}
	_, err = r.DB("cloud").Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound, "nothing stored")
}

func TestRestartResendsWhatWasNotAcknowledged(t *testing.T) {
	ctx := context.Background()
	devDir, cloudDir := t.TempDir(), t.TempDir()
	plan := allInOne(t, devDir, cloudDir)
	// First run: the device alone, no cloud side: changes queue.
	devOnly := plan
	devOnly.Pipelines = plan.Pipelines[:1]
	devOnly.Storage = map[string]StoragePlan{"local": plan.Storage["local"]}
	r1, err := New(devOnly, Options{})
	require.NoError(t, err)
	require.NoError(t, r1.Start(ctx))
	for i := 1; i <= 30; i++ {
		_, err := r1.DB("local").Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": i}, nil)
		require.NoError(t, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	require.Error(t, r1.Shutdown(sctx), "nobody acked: the drain times out")
	r2 := start(t, allInOne(t, devDir, cloudDir))
	require.NoError(t, r2.Sync(syncCtx(t)))
	res, err := r2.DB("cloud").Find(ctx, "Reading", db.Item{"deviceId": "dev1"}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 30, "the unacknowledged changes stayed in the outbox and went after the restart")
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
