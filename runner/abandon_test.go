package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// refusing refuses the first up batches for good, as a broker that drops
// a packet it will never take does (the mqtt transport's guard then fails
// the publish with a permanent error).
type refusing struct {
	pipeline.Transport
	left atomic.Int64
}

func (r *refusing) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	if ch == pipeline.ChanUp && r.left.Add(-1) >= 0 {
		return pipeline.Permanent(fmt.Errorf("%w: the broker refused the packet", pipeline.ErrInvalid))
	}
	return r.Transport.Publish(ctx, ch, site, msg)
}

type refusingFactory struct{ pipeline.Factory }

func (f refusingFactory) Create(ctx context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	t, err := f.Factory.Create(ctx, set, cfg)
	if err != nil {
		return nil, err
	}
	r := &refusing{Transport: t.(pipeline.Transport)}
	r.left.Store(1)
	return r, nil
}

// A batch the transport refuses for good becomes dead letters and leaves
// the outbox; it is not resent forever, and later changes still go.
func TestPermanentlyRefusedBatchIsDeadLetteredNotResent(t *testing.T) {
	ctx := context.Background()
	plan := allInOne(t)
	plan.Transports["bus"] = ComponentPlan{Factory: refusingFactory{plan.Transports["bus"].Factory}, Config: plan.Transports["bus"].Config}
	r := start(t, plan)
	dev := r.DB("local")
	_, err := dev.Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1, "temp": 1}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		letters, _ := r.DeadLetters().Recent()
		for _, l := range letters {
			if strings.Contains(l.Reject.Reason, "the broker refused the packet") && l.Reject.Model == "Reading" {
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "the refused change is a dead letter with the reason")
	_, err = dev.Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 2, "temp": 2}, nil)
	require.NoError(t, err)
	require.NoError(t, r.Sync(syncCtx(t)))
	_, err = r.DB("cloud").Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 2}, nil)
	require.NoError(t, err, "later changes still replicate")
	_, err = r.DB("cloud").Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.True(t, errors.Is(err, pipeline.ErrNotFound), "the refused change was not resent: %v", err)
	st, err := r.stores["local"].store.Outbox().Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Depth, "the outbox moved on")
}
