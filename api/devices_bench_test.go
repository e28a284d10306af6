package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/plugins/transport/inproc"
	"github.com/iotod/iotod/runner"
	"github.com/iotod/iotod/schema"
)

// benchDevices is the fleet's size in BenchmarkDevices.
const benchDevices = 10_000

// BenchmarkDevices fills a cloud worker's fleet index with 10,000
// devices, each having sent a batch through the ingest pipeline (every
// seventh refused), then serves GET /v1/devices through the API's
// handler in several shapes, and GET /v1/status beside it for scale:
//
//	go test ./api -run '^$' -bench BenchmarkDevices -benchtime 200x
//
// ms/op is the time of one request (handler and JSON encoding, no
// network).
func BenchmarkDevices(b *testing.B) {
	testenv.NeedBadger(b)
	ctx := context.Background()
	sch, err := schema.Load(defaultSchema)
	if err != nil {
		b.Fatal(err)
	}
	cfg := badger.NewDefaultConfig()
	cfg.Path = b.TempDir()
	cfg.Durability = badger.DurabilityAsync
	bus, err := inproc.New(inproc.NewDefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	bf := busFactory{bus}
	plan := runner.Plan{Site: "cloud", Schema: sch,
		Storage: map[string]runner.StoragePlan{"cloud": {ComponentPlan: runner.ComponentPlan{Factory: badger.NewFactory(), Config: &cfg},
			Side: schema.SideCloud, Site: "cloud"}},
		Transports: map[string]runner.ComponentPlan{"bus": {Factory: bf, Config: bf.NewDefaultConfig()}},
		Pipelines: []runner.PipelinePlan{{Name: "ingest", Direction: pipeline.Up,
			From: runner.Ref{Kind: pipeline.KindTransport, Name: "bus"}, To: runner.Ref{Kind: pipeline.KindStorage, Name: "cloud"}}},
	}
	r, err := runner.New(plan, runner.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Shutdown(sctx)
	})
	fill := time.Now()
	for i := range benchDevices {
		payload := fmt.Sprintf(`{"v":1,"id":"b%d","changes":[]}`, i)
		if i%7 == 0 {
			payload = fmt.Sprintf(`{"v":1,"id":"b%d","changes":[{"model":"Status","op":"explode","key":{"pk":"x","sk":"y"}}]}`, i)
		}
		if err := bus.Publish(ctx, pipeline.ChanUp, fmt.Sprintf("pump-%05d", i), message.NewMessage(fmt.Sprint("m", i), []byte(payload))); err != nil {
			b.Fatal(err)
		}
	}
	for {
		p, err := r.Fleet().List(runner.FleetQuery{})
		if err != nil {
			b.Fatal(err)
		}
		if p.Known == benchDevices {
			break
		}
		if time.Since(fill) > 2*time.Minute {
			b.Fatalf("the fleet holds %d devices after 2 minutes", p.Known)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Logf("%d devices through the ingest pipeline in %s", benchDevices, time.Since(fill).Round(time.Millisecond))

	srv, err := api.NewServer(api.Options{DB: r.DB("cloud"), Pipelines: r, Site: "cloud"})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	for _, c := range []struct{ name, path string }{
		{"status", "/v1/status"},
		{"devices", "/v1/devices"},
		{"devices-last_seen-1000", "/v1/devices?sort=last_seen&limit=1000"},
		{"devices-refused-filter", "/v1/devices?sort=refused&filter=07"},
		{"devices-page-50", "/v1/devices?page=50"},
		{"devices-page-10000", "/v1/devices?page=10000"},
	} {
		b.Run(c.name, func(b *testing.B) {
			size := 0
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+c.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", c.path, rec.Code, rec.Body)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(size), "bytes/response")
		})
	}
}
