package runner

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// lossy drops every other batch published up, as a flaky link would.
type lossy struct {
	pipeline.Transport
	n atomic.Int64
}

func (l *lossy) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	if ch == pipeline.ChanUp && l.n.Add(1)%2 == 1 {
		return nil // lost after the transport accepted it: only a resend recovers
	}
	return l.Transport.Publish(ctx, ch, site, msg)
}

type lossyFactory struct {
	pipeline.Factory
	made *lossy
}

func (f *lossyFactory) Create(ctx context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	t, err := f.Factory.Create(ctx, set, cfg)
	if err != nil {
		return nil, err
	}
	f.made = &lossy{Transport: t.(pipeline.Transport)}
	return f.made, nil
}

func TestLostBatchesAreResentUntilAcked(t *testing.T) {
	ctx := context.Background()
	plan := allInOne(t)
	bus := plan.Transports["bus"]
	lf := &lossyFactory{Factory: bus.Factory}
	plan.Transports["bus"] = ComponentPlan{Factory: lf, Config: bus.Config}
	plan.Pipelines[0].AckTimeout = 50 * time.Millisecond
	r := start(t, plan)
	for i := 1; i <= 20; i++ {
		_, err := r.DB("local").Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": i}, nil)
		require.NoError(t, err)
		if i%5 == 0 {
			require.NoError(t, r.Sync(syncCtx(t))) // several batches, some lost
		}
	}
	res, err := r.DB("cloud").Find(ctx, "Reading", db.Item{"deviceId": "dev1"}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 20)
	require.Positive(t, testutil.ToFloat64(r.m.resends.WithLabelValues("up")), "lost batches were resent")
	require.EqualValues(t, 20, testutil.ToFloat64(r.m.acks.WithLabelValues("up", "applied")))
}
