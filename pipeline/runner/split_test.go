package runner

import (
	"context"
	"fmt"
	"strings"
	"testing"

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
