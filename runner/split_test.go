package runner

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// small refuses payloads over max, as the MQTT transport does over its
// max_payload.
type small struct {
	pipeline.Transport
	max int
}

func (s small) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	if len(msg.Payload) > s.max {
		return fmt.Errorf("publish %d bytes: %w", len(msg.Payload), pipeline.ErrTooLargeForTransport)
	}
	return s.Transport.Publish(ctx, ch, site, msg)
}

type smallFactory struct {
	pipeline.Factory
	max int
}

func (f smallFactory) Create(ctx context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	t, err := f.Factory.Create(ctx, set, cfg)
	if err != nil {
		return nil, err
	}
	return small{Transport: t.(pipeline.Transport), max: f.max}, nil
}

// A batch over the transport's maximum is split until it fits; a single
// change over it is refused with the reason, and the rest still arrive.
func TestOversizedBatchesAreSplitAndOversizedChangesRefused(t *testing.T) {
	ctx := context.Background()
	plan := withStages(t, allInOne(t)) // batches of up to 7 changes
	bus := plan.Transports["bus"]
	plan.Transports["bus"] = ComponentPlan{Factory: smallFactory{Factory: bus.Factory, max: 4000}, Config: bus.Config}
	r := start(t, plan)
	for i := 1; i <= 21; i++ {
		item := db.Item{"deviceId": "dev1", "seq": i, "tags": []any{strings.Repeat("x", 600)}}
		if i == 11 {
			item["tags"] = []any{strings.Repeat("y", 5000)} // too large on its own
		}
		_, err := r.DB("local").Create(ctx, "Reading", item, nil)
		require.NoError(t, err)
	}
	require.NoError(t, r.Sync(syncCtx(t)))
	res, err := r.DB("cloud").Find(ctx, "Reading", db.Item{"deviceId": "dev1"}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 20, "every change but the oversized one arrived")
	_, err = r.DB("cloud").Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 11}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound)
	letters, _ := r.DeadLetters().Recent()
	require.Len(t, letters, 1)
	require.Contains(t, letters[0].Reject.Reason, "over the transport's maximum")
	st, err := r.stores["local"].store.Outbox().Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Depth, "the refused change is settled, not resent forever")
}

func (s small) MaxPayload() int { return s.max }

// A batch received over the transport's maximum payload is refused whole,
// with the reason in the ack, and nothing of it is stored.
func TestReceivedBatchOverTheMaximumIsRefused(t *testing.T) {
	ctx := context.Background()
	plan := allInOne(t)
	bus := plan.Transports["bus"]
	plan.Transports["bus"] = ComponentPlan{Factory: smallFactory{Factory: bus.Factory, max: 2000}, Config: bus.Config}
	r := start(t, plan)
	inner := r.transports["bus"].t.(small).Transport // publish past the limit, as a rogue device would
	acks, err := inner.Subscribe(ctx, pipeline.ChanUpAck, "dev1")
	require.NoError(t, err)
	item := fmt.Sprintf(`{"pk":"reading#dev1","sk":"reading#00000001","deviceId":"dev1","seq":1,"tags":[%q]}`, strings.Repeat("z", 3000))
	payload := fmt.Sprintf(`{"v":1,"id":"big","changes":[{"model":"Reading","op":"create","key":{"pk":"reading#dev1","sk":"reading#00000001"},"item":%s,"version":{"wall":1,"counter":0,"origin":"dev1"},"origin":"dev1"}]}`, item)
	require.NoError(t, inner.Publish(ctx, pipeline.ChanUp, "dev1", message.NewMessage("m", []byte(payload))))
	var msg *message.Message
	select {
	case msg = <-acks:
	case <-time.After(5 * time.Second):
		t.Fatal("no ack for the oversized batch")
	}
	msg.Ack()
	require.Contains(t, string(msg.Payload), `"batch":"big"`)
	require.Contains(t, string(msg.Payload), "over the 2000 byte maximum payload")
	_, err = r.DB("cloud").Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound)
}
