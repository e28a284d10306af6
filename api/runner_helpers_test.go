package api_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/plugins/transport/inproc"
	"github.com/iotod/iotod/runner"
	"github.com/iotod/iotod/schema"
)

// busFactory hands the runner a transport the test holds too, so a test
// can publish on it.
type busFactory struct{ t *inproc.Transport }

func (busFactory) Kind() pipeline.Kind               { return pipeline.KindTransport }
func (busFactory) Type() string                      { return "inproc" }
func (busFactory) Description() string               { return "shared inproc transport for api tests" }
func (busFactory) NewDefaultConfig() pipeline.Config { c := inproc.NewDefaultConfig(); return &c }
func (f busFactory) Create(context.Context, pipeline.Settings, pipeline.Config) (any, error) {
	return f.t, nil
}

// testPlan is a device store "local" sending up over the transport "bus";
// with cloud, a cloud store "cloud" receives it (pipeline "ingest"), else
// nothing ever acknowledges the device's changes.
func testPlan(t *testing.T, site string, cloud bool) (runner.Plan, *inproc.Transport) {
	testenv.NeedBadger(t)
	t.Helper()
	sch, err := schema.Load(defaultSchema)
	require.NoError(t, err)
	store := func(side schema.Side, site string) runner.StoragePlan {
		cfg := badger.NewDefaultConfig()
		cfg.Path = t.TempDir()
		cfg.Durability = badger.DurabilityAsync
		return runner.StoragePlan{ComponentPlan: runner.ComponentPlan{Factory: badger.NewFactory(), Config: &cfg},
			Side: side, Site: site}
	}
	bus, err := inproc.New(inproc.NewDefaultConfig())
	require.NoError(t, err)
	bf := busFactory{bus}
	plan := runner.Plan{
		Site: site, Schema: sch,
		Storage:    map[string]runner.StoragePlan{"local": store(schema.SideDevice, site)},
		Transports: map[string]runner.ComponentPlan{"bus": {Factory: bf, Config: bf.NewDefaultConfig()}},
		Pipelines: []runner.PipelinePlan{{Name: "up", Direction: pipeline.Up, AckTimeout: 500 * time.Millisecond,
			From: runner.Ref{Kind: pipeline.KindStorage, Name: "local"}, To: runner.Ref{Kind: pipeline.KindTransport, Name: "bus"}}},
	}
	if cloud {
		plan.Storage["cloud"] = store(schema.SideCloud, "cloud")
		plan.Pipelines = append(plan.Pipelines, runner.PipelinePlan{Name: "ingest", Direction: pipeline.Up,
			From: runner.Ref{Kind: pipeline.KindTransport, Name: "bus"}, To: runner.Ref{Kind: pipeline.KindStorage, Name: "cloud"}})
	}
	return plan, bus
}

// startRunner starts a runner over plan; the test's end shuts it down,
// giving up on acks that never come after a second.
func startRunner(t *testing.T, plan runner.Plan) *runner.Runner {
	t.Helper()
	r, err := runner.New(plan, runner.Options{})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	return r
}

// serveRunner serves the runner's local store and pipelines through
// httptest and returns its URL and a client of it.
func serveRunner(t *testing.T, r *runner.Runner, site string) (string, *api.Client) {
	t.Helper()
	return serveRunnerLogged(t, r, site, nil)
}

// serveRunnerLogged is serveRunner with the server logging to log.
func serveRunnerLogged(t *testing.T, r *runner.Runner, site string, log *slog.Logger) (string, *api.Client) {
	t.Helper()
	srv, err := api.NewServer(api.Options{DB: r.DB("local"), Pipelines: r, Site: site, Logger: log})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c, err := api.NewClient(hs.URL, "")
	require.NoError(t, err)
	return hs.URL, c
}
