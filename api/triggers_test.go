package api_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/runner"
)

// switchTrigger fails while down is set and counts what it delivered.
type switchTrigger struct {
	down      atomic.Bool
	delivered atomic.Int64
}

func (s *switchTrigger) Fire(_ context.Context, _ string, changes []pipeline.Change) error {
	if s.down.Load() {
		return errors.New("the endpoint answers 503")
	}
	s.delivered.Add(int64(len(changes)))
	return nil
}

type noConfig struct{ _ struct{} }

func (*noConfig) Validate() error { return nil }

// GET /v1/triggers shows a trigger's dead deliveries; POST
// /v1/triggers/replay queues them again, and they are delivered.
func TestTriggersListedAndReplayed(t *testing.T) {
	ctx := context.Background()
	trig := &switchTrigger{}
	trig.down.Store(true)
	f := pipeline.MakeFactory(pipeline.KindTrigger, "switch", "a test trigger", func() noConfig { return noConfig{} },
		func(context.Context, pipeline.Settings, noConfig) (any, error) { return trig, nil })
	plan, _ := testPlan(t, "dev1", true)
	for i := range plan.Pipelines {
		if plan.Pipelines[i].Name == "ingest" {
			plan.Pipelines[i].Triggers = []runner.ComponentPlan{{ID: pipeline.ID{Type: "switch"}, Factory: f, Config: f.NewDefaultConfig()}}
			plan.Pipelines[i].TriggerDelivery = pipeline.TriggerDelivery{Batch: 10, Timeout: time.Second, Attempts: 2,
				RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}
		}
	}
	r := startRunner(t, plan)
	url, c := serveRunner(t, r, "dev1")
	for i := range 3 {
		_, err := c.Create(ctx, "Status", db.Item{"temp": i}, nil)
		require.NoError(t, err)
	}
	require.NoError(t, c.Sync(ctx, 0), "replication does not wait for the trigger")
	require.Eventually(t, func() bool {
		list, err := c.Triggers(ctx)
		return err == nil && len(list) == 1 && list[0].Dead == 3 && list[0].Queued == 0
	}, 10*time.Second, 10*time.Millisecond, "three dead deliveries")
	list, err := c.Triggers(ctx)
	require.NoError(t, err)
	assert.Equal(t, runner.TriggerStatus{Name: "ingest:switch", Pipeline: "ingest", Dead: 3}, list[0])

	trig.down.Store(false)
	n, err := c.ReplayTriggers(ctx, "ingest:switch")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	require.Eventually(t, func() bool { return trig.delivered.Load() == 3 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		list, err := c.Triggers(ctx)
		return err == nil && list[0].Dead == 0 && list[0].Queued == 0
	}, 10*time.Second, 10*time.Millisecond)

	_, err = c.ReplayTriggers(ctx, "ingest:nope")
	var apiErr *api.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusNotFound, apiErr.Status)
	code, body := post(t, url+"/v1/triggers/replay", `{}`)
	assert.Equal(t, http.StatusBadRequest, code, body)
	assert.Contains(t, body, "trigger: required")
}
