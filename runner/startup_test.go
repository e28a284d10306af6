package runner

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

type failingFactory struct{ pipeline.Factory }

func (failingFactory) Create(context.Context, pipeline.Settings, pipeline.Config) (any, error) {
	return nil, errors.New("broker refused the connection")
}

// A plugin that fails at start-up stops start-up with its name and the
// reason, and whatever had started is closed again.
func TestFailingPluginStopsStartUp(t *testing.T) {
	ctx := context.Background()
	plan := allInOne(t)
	bus := plan.Transports["bus"]
	plan.Transports["bus"] = ComponentPlan{Factory: failingFactory{bus.Factory}, Config: bus.Config}
	r, err := New(plan, Options{})
	require.NoError(t, err)
	err = r.Start(ctx)
	require.ErrorContains(t, err, "transport/bus: broker refused the connection")
	require.NoError(t, r.Shutdown(ctx), "shutdown after a failed start is safe")

	// The stores it had opened were closed: they open again at once.
	plan.Transports["bus"] = bus
	r2 := start(t, plan)
	require.NotNil(t, r2.DB("local"))
}

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	r, err := New(allInOne(t), Options{})
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()))
}
