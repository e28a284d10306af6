package runner

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/stages/batch"
	"github.com/iotod/iotod/plugins/stages/policy"
)

func withStages(t *testing.T, plan Plan) Plan {
	t.Helper()
	pf, bf := policy.NewFactory(), batch.NewFactory()
	bc := bf.NewDefaultConfig().(*batch.Config)
	bc.Delay, bc.Count = 20*time.Millisecond, 7
	pol := ComponentPlan{ID: pipeline.ID{Type: "policy"}, Factory: pf, Config: pf.NewDefaultConfig()}
	for i := range plan.Pipelines {
		plan.Pipelines[i].Stages = []ComponentPlan{pol}
		if plan.Pipelines[i].From.Kind == pipeline.KindStorage {
			plan.Pipelines[i].Stages = append(plan.Pipelines[i].Stages, ComponentPlan{ID: pipeline.ID{Type: "batch"}, Factory: bf, Config: bc})
		}
	}
	return plan
}

func TestPolicyAndBatchStagesOnBothSides(t *testing.T) {
	ctx := context.Background()
	r := start(t, withStages(t, allInOne(t)))
	for i := 1; i <= 40; i++ {
		_, err := r.DB("local").Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": i}, nil)
		require.NoError(t, err)
	}
	// Three updates of one key coalesce to the latest snapshot in a batch.
	for _, temp := range []int{1, 2, 3} {
		_, err := r.DB("local").Update(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1, "temp": temp}, nil)
		require.NoError(t, err)
	}
	require.NoError(t, r.Sync(syncCtx(t)))
	res, err := r.DB("cloud").Find(ctx, "Reading", db.Item{"deviceId": "dev1"}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 40)
	got, err := r.DB("cloud").Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.NoError(t, err)
	require.Equal(t, json.Number("3"), got["temp"])

	// A device pushing a change of a model that only syncs down is refused
	// by the cloud's policy, and told so in the ack; nothing is stored.
	acks, err := r.transports["bus"].t.Subscribe(ctx, pipeline.ChanUpAck, "dev7")
	require.NoError(t, err)
	item, _ := json.Marshal(map[string]any{"pk": "account#x", "sk": "account#", "id": "x", "name": "sneaky", "updated": "2026-01-01T00:00:00.000Z"})
	b := pipeline.Batch{V: 1, ID: "b-down-model", Site: "dev7", Changes: []pipeline.Change{{Model: "Account", Op: pipeline.OpCreate,
		Key: pipeline.Key{PK: "account#x", SK: "account#"}, Item: item, Version: pipeline.Version{Wall: 9, Origin: "dev7"}, Origin: "dev7"}}}
	payload, _ := json.Marshal(b)
	require.NoError(t, r.transports["bus"].t.Publish(ctx, pipeline.ChanUp, "dev7", message.NewMessage("m", payload)))
	select {
	case msg := <-acks:
		msg.Ack()
		var ack pipeline.Ack
		require.NoError(t, json.Unmarshal(msg.Payload, &ack))
		require.Len(t, ack.Rejected, 1)
		require.Contains(t, ack.Rejected[0].Reason, "down")
	case <-time.After(5 * time.Second):
		t.Fatal("no ack")
	}
	_, err = r.DB("cloud").Get(ctx, "Account", db.Item{"id": "x"}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound)
	_, total := r.DeadLetters().Recent()
	require.EqualValues(t, 1, total, "the refusal is kept as a dead letter")
}
