package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/plugins/transport/inproc"
	"github.com/iotod/iotod/runner"
	"github.com/iotod/iotod/schema"
)

// P11: the status page and GET /v1/devices of a cloud worker whose fleet
// holds many devices, over real HTTP, each beside GET /v1/status in the
// same run. The fleet is filled the way a cloud worker fills it: every
// device sends a batch over the transport into the ingest pipeline, whose
// receiver records it (every seventh batch holds changes the cloud
// refuses); the records are saved to the cloud store as in production.

// apiBar is P11's bar: every answer in at most 50ms.
const apiBar = 50 * time.Millisecond

// APIOptions configure RunAPI.
type APIOptions struct {
	Dir      string
	Out      io.Writer
	Devices  int  // devices in the fleet (default 10,000)
	Requests int  // timed requests per endpoint (default 200)
	JSON     bool // one JSON document instead of the text report
}

// APIReport is what RunAPI measured (--json).
type APIReport struct {
	Machine     string        `json:"machine"`
	Devices     int           `json:"devices"`
	Requests    int           `json:"requests"`
	FillSeconds float64       `json:"fill_seconds"`
	BarMS       float64       `json:"bar_ms"`
	Baseline    APIEndpoint   `json:"baseline"`
	Endpoints   []APIEndpoint `json:"endpoints"`
	// Met is whether every endpoint answered within the bar, every time.
	Met bool `json:"met"`
}

// APIEndpoint is one endpoint's latencies (request sent to body read).
type APIEndpoint struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	Bytes   int    `json:"bytes"` // the last answer's body
	Latency Dist   `json:"latency"`
	// Ratio is the p50 over the baseline's p50.
	Ratio   float64 `json:"ratio,omitempty"`
	Verdict string  `json:"verdict,omitempty"`
}

// apiEndpoints are what P11 measures; the first is the baseline. The
// sorted and filtered queries are as the page's script builds them
// (ui.js, fleetParams: sort, filter, limit, page).
func apiEndpoints(devices int) []APIEndpoint {
	last := max(1, (devices+runner.DefaultFleetLimit-1)/runner.DefaultFleetLimit)
	return []APIEndpoint{
		{Name: "status (baseline)", Path: "/v1/status"},
		{Name: "page", Path: "/"},
		{Name: "page, sorted, filtered, page 2", Path: "/?sort=refused&filter=07&page=2"},
		{Name: "page, 1000 rows", Path: "/?sort=-last_seen&limit=1000"},
		{Name: "devices, first page", Path: "/v1/devices"},
		{Name: "devices, last page", Path: fmt.Sprintf("/v1/devices?page=%d", last)},
		{Name: "devices, sorted, filtered, page 2", Path: "/v1/devices?sort=refused&filter=07&page=2"},
		{Name: "devices, 1000 rows", Path: "/v1/devices?sort=-last_seen&limit=1000"},
		{Name: "metrics (the page polls it)", Path: "/metrics"},
	}
}

func (o *APIOptions) defaults() {
	if o.Devices <= 0 {
		o.Devices = 10_000
	}
	if o.Requests <= 0 {
		o.Requests = 200
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// RunAPI measures P11 and prints each endpoint beside GET /v1/status.
func RunAPI(ctx context.Context, o APIOptions) (err error) {
	o.defaults()
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("bench api: %w", err)
	}
	text := o.Out
	if o.JSON {
		text = io.Discard
	}
	rep := APIReport{Machine: fmt.Sprintf("%s/%s, %d CPUs (%s), Go %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), runtime.Version()),
		Devices: o.Devices, Requests: o.Requests, BarMS: float64(apiBar) / float64(time.Millisecond)}
	fmt.Fprintf(text, "iotod bench api: %s\n  a cloud worker (badger cloud store, ingest pipeline over an inproc transport) with its API and status page on loopback\n", rep.Machine)
	start := time.Now()
	r, err := fillFleet(ctx, o.Dir, o.Devices)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopRunner(r)) }()
	rep.FillSeconds = time.Since(start).Seconds()
	fmt.Fprintf(text, "  %d devices recorded through the ingest pipeline and saved in %.1fs\n", o.Devices, rep.FillSeconds)

	srv, err := api.NewServer(api.Options{DB: r.DB("cloud"), Name: "cloud", Site: "cloud", Pipelines: r, UI: true})
	if err != nil {
		return fmt.Errorf("bench api: %w", err)
	}
	if err := srv.Start(ctx, "127.0.0.1:0", ""); err != nil {
		return fmt.Errorf("bench api: %w", err)
	}
	defer func() { err = errors.Join(err, srv.Shutdown(context.Background())) }()
	eps := apiEndpoints(o.Devices)
	if err := timeEndpoints(ctx, "http://"+srv.Addrs()[0].String(), eps, o.Requests); err != nil {
		return err
	}
	rep.Baseline, rep.Endpoints, rep.Met = eps[0], eps[1:], true
	for i := range rep.Endpoints {
		e := &rep.Endpoints[i]
		if rep.Baseline.Latency.P50 > 0 {
			e.Ratio = float64(e.Latency.P50) / float64(rep.Baseline.Latency.P50)
		}
		e.Verdict = apiVerdict(e.Latency)
		rep.Met = rep.Met && e.Latency.Max <= apiBar
	}
	if o.JSON {
		return printJSON(o.Out, rep)
	}
	printAPI(text, rep)
	return nil
}

// apiVerdict judges d against the bar: every answer, or only p99, in it.
func apiVerdict(d Dist) string {
	switch {
	case d.Max <= apiBar:
		return "met"
	case d.P99 <= apiBar:
		return "missed by its max (p99 met)"
	}
	return "missed"
}

func printAPI(w io.Writer, rep APIReport) {
	b := rep.Baseline
	fmt.Fprintf(w, "\nP11, %d requests per endpoint over HTTP (keep-alive, one at a time, endpoints interleaved), bar <= %s per answer\n", rep.Requests, apiBar)
	fmt.Fprintf(w, "  %-36s %-42s %9s  %s\n", "endpoint", "path", "bytes", "latency")
	fmt.Fprintf(w, "  %-36s %-42s %9d  %s\n", b.Name, b.Path, b.Bytes, b.Latency)
	for _, e := range rep.Endpoints {
		fmt.Fprintf(w, "  %-36s %-42s %9d  %s  (%.1fx the baseline's p50): %s\n", e.Name, e.Path, e.Bytes, e.Latency, e.Ratio, e.Verdict)
	}
	verdict := "met"
	if !rep.Met {
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "P11 (<= %s per answer with %d devices): %s\n", apiBar, rep.Devices, verdict)
}

// timeEndpoints requests every endpoint n times, one request at a time,
// in rounds that visit each once in a rotating order (after 3 rounds not
// counted), and fills in each one's latencies and size.
func timeEndpoints(ctx context.Context, base string, eps []APIEndpoint, n int) error {
	client := &http.Client{Timeout: time.Minute}
	defer client.CloseIdleConnections()
	lat := make([]latencies, len(eps))
	const warm = 3
	for round := range n + warm {
		for j := range eps {
			i := (j + round) % len(eps)
			d, size, err := getTimed(ctx, client, base+eps[i].Path)
			if err != nil {
				return err
			}
			eps[i].Bytes = size
			if round >= warm {
				lat[i].add([]time.Duration{d})
			}
		}
	}
	for i := range eps {
		eps[i].Latency = lat[i].dist()
	}
	return nil
}

// getTimed GETs url and reads the whole answer, which must be a 200: the
// time from sending the request to the body's end, and its size.
func getTimed(ctx context.Context, client *http.Client, url string) (time.Duration, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("bench api: %w", err)
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("bench api: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	d := time.Since(t0)
	_ = resp.Body.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("bench api: GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("bench api: GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return d, len(body), nil
}

// busFactory hands the runner a transport this bench publishes on too.
type busFactory struct{ t *inproc.Transport }

func (busFactory) Kind() pipeline.Kind               { return pipeline.KindTransport }
func (busFactory) Type() string                      { return "inproc" }
func (busFactory) Description() string               { return "the bench's shared inproc transport" }
func (busFactory) NewDefaultConfig() pipeline.Config { c := inproc.NewDefaultConfig(); return &c }
func (f busFactory) Create(context.Context, pipeline.Settings, pipeline.Config) (any, error) {
	return f.t, nil
}

// fillFleet starts a cloud worker (a badger cloud store, an ingest
// pipeline from an inproc transport) and has n devices each send it one
// batch: an empty one, or for every seventh device one whose 1 to 5
// changes the cloud refuses. It returns once the fleet holds them all and
// has saved them.
func fillFleet(ctx context.Context, dir string, n int) (*runner.Runner, error) {
	sch, err := schema.ParseBytes([]byte(replicateSchema), "json", "bench")
	if err != nil {
		return nil, fmt.Errorf("bench schema: %w", err)
	}
	bus, err := inproc.New(inproc.NewDefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("bench api: %w", err)
	}
	cfg := badger.NewDefaultConfig()
	cfg.Path, cfg.Durability = dir, badger.DurabilityAsync
	bf := busFactory{bus}
	plan := runner.Plan{Site: "cloud", Schema: sch, Dir: dir,
		Storage: map[string]runner.StoragePlan{"cloud": {ComponentPlan: runner.ComponentPlan{Factory: badger.NewFactory(), Config: &cfg},
			Side: schema.SideCloud, Site: "cloud"}},
		Transports: map[string]runner.ComponentPlan{"bus": {Factory: bf, Config: bf.NewDefaultConfig()}},
		Pipelines: []runner.PipelinePlan{{Name: "ingest", Direction: pipeline.Up,
			From: runner.Ref{Kind: pipeline.KindTransport, Name: "bus"}, To: runner.Ref{Kind: pipeline.KindStorage, Name: "cloud"}}},
	}
	r, err := runner.New(plan, runner.Options{})
	if err != nil {
		return nil, fmt.Errorf("bench api: cloud runner: %w", err)
	}
	if err := r.Start(ctx); err != nil {
		return nil, fmt.Errorf("bench api: cloud runner: %w", err)
	}
	if err := sendBatches(ctx, bus, n); err != nil {
		return nil, errors.Join(err, stopRunner(r))
	}
	if err := waitFleet(ctx, r.Fleet(), n); err != nil {
		return nil, errors.Join(err, stopRunner(r))
	}
	return r, nil
}

// sendBatches publishes one up batch from each of n devices.
func sendBatches(ctx context.Context, bus *inproc.Transport, n int) error {
	for i := range n {
		payload := fmt.Sprintf(`{"v":1,"id":"b%d","changes":[]}`, i)
		if i%7 == 0 {
			bad := strings.Repeat(`{"model":"Bench","op":"explode","key":{"pk":"x","sk":"y"}},`, 1+i%5)
			payload = fmt.Sprintf(`{"v":1,"id":"b%d","changes":[%s]}`, i, strings.TrimSuffix(bad, ","))
		}
		if err := bus.Publish(ctx, pipeline.ChanUp, fmt.Sprintf("dev-%05d", i), message.NewMessage(fmt.Sprint("m", i), []byte(payload))); err != nil {
			return fmt.Errorf("bench api: publish: %w", err)
		}
	}
	return nil
}

// waitFleet waits until the fleet knows n devices and has saved them: a
// save ended after all were known, and none since for a second (a save
// of many devices writes them in chunks, each setting SavedAt).
func waitFleet(ctx context.Context, f *runner.Fleet, n int) error {
	if f == nil {
		return errors.New("bench api: the cloud runner keeps no fleet")
	}
	var known, saved, still time.Time
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		p, err := f.List(runner.FleetQuery{})
		if err != nil {
			return fmt.Errorf("bench api: %w", err)
		}
		now := time.Now()
		if known.IsZero() && p.Known >= n {
			known = now
		}
		if !p.SavedAt.Equal(saved) {
			saved, still = p.SavedAt, now
		}
		if !known.IsZero() && saved.After(known) && now.Sub(still) >= time.Second {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("bench api: the fleet did not hold and save %d devices in 5 minutes", n)
}

func stopRunner(r *runner.Runner) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		return fmt.Errorf("bench api: cloud runner: %w", err)
	}
	return nil
}

// servePage serves the local API over s, with the status page (api.ui:
// on by default, as iotod run serves it on loopback), on a free loopback
// port, and loads the page once: P8 measures an idle device that has
// served it. It returns the page's size and how to stop the server.
func servePage(ctx context.Context, s *side, site string) (int, func(context.Context) error, error) {
	srv, err := api.NewServer(api.Options{DB: s.db, Name: "local", Site: site, Pipelines: s.r, UI: true})
	if err != nil {
		return 0, nil, fmt.Errorf("device API: %w", err)
	}
	if err := srv.Start(ctx, "127.0.0.1:0", ""); err != nil {
		return 0, nil, fmt.Errorf("device API: %w", err)
	}
	client := &http.Client{Timeout: time.Minute}
	_, size, err := getTimed(ctx, client, "http://"+srv.Addrs()[0].String()+"/")
	client.CloseIdleConnections()
	if err != nil {
		return 0, nil, errors.Join(fmt.Errorf("device status page: %w", err), srv.Shutdown(ctx))
	}
	return size, srv.Shutdown, nil
}
