package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/runner"
)

// TestRunAPIJSON runs P11 at a tiny size with --json: one document, the
// baseline and every endpoint requested as many times as asked, each
// answer read (no figure is checked).
func TestRunAPIJSON(t *testing.T) {
	testenv.NeedBadger(t)
	var out bytes.Buffer
	err := RunAPI(context.Background(), APIOptions{Dir: t.TempDir(), Devices: 300, Requests: 3, Out: &out, JSON: true})
	require.NoError(t, err)
	var r APIReport
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&r), "the output is one JSON document")
	require.False(t, dec.More(), "more than one document")
	require.Equal(t, 300, r.Devices)
	require.Equal(t, "/v1/status", r.Baseline.Path)
	require.Equal(t, 3, r.Baseline.Latency.N)
	require.Len(t, r.Endpoints, len(apiEndpoints(300))-1)
	paths := map[string]bool{}
	for _, e := range r.Endpoints {
		paths[e.Path] = true
		require.Equal(t, 3, e.Latency.N, e.Path)
		require.Positive(t, e.Bytes, e.Path)
		require.Positive(t, e.Latency.P50, e.Path)
		require.NotEmpty(t, e.Verdict, e.Path)
	}
	for _, p := range []string{"/", "/v1/devices", "/v1/devices?page=3", "/v1/devices?sort=refused&filter=07&page=2"} {
		require.True(t, paths[p], "measures %s", p)
	}
}

// TestAPIFleetFill checks the fleet the bench measures: every device
// recorded through the ingest pipeline, every seventh with refusals.
func TestAPIFleetFill(t *testing.T) {
	testenv.NeedBadger(t)
	r, err := fillFleet(context.Background(), t.TempDir(), 70)
	require.NoError(t, err)
	defer func() { require.NoError(t, stopRunner(r)) }()
	p, err := r.Fleet().List(runner.FleetQuery{Sort: runner.FleetSortRefused, Limit: 100})
	require.NoError(t, err)
	require.Equal(t, 70, p.Known)
	require.Len(t, p.Devices, 70)
	refused := 0
	for _, d := range p.Devices {
		if d.Refused > 0 {
			refused++
		}
	}
	require.Equal(t, 10, refused)
	require.False(t, p.SavedAt.IsZero(), "saved")
}

// TestPrintAPI checks the text report: each endpoint beside the
// baseline, its verdict, and the overall verdict.
func TestPrintAPI(t *testing.T) {
	ms := time.Millisecond
	rep := APIReport{Devices: 10_000, Requests: 5,
		Baseline: APIEndpoint{Name: "status (baseline)", Path: "/v1/status", Bytes: 10, Latency: Dist{N: 5, P50: ms, P99: ms, Max: ms}},
		Endpoints: []APIEndpoint{
			{Name: "page", Path: "/", Bytes: 100, Latency: Dist{N: 5, P50: 2 * ms, P99: 3 * ms, Max: 4 * ms}, Ratio: 2, Verdict: apiVerdict(Dist{Max: 4 * ms})},
			{Name: "devices", Path: "/v1/devices", Bytes: 100, Latency: Dist{N: 5, P50: 20 * ms, P99: 40 * ms, Max: 60 * ms}, Ratio: 20, Verdict: apiVerdict(Dist{P99: 40 * ms, Max: 60 * ms})},
		}}
	var out bytes.Buffer
	printAPI(&out, rep)
	s := out.String()
	for _, want := range []string{"status (baseline)", "/v1/status", "(2.0x the baseline's p50): met", "missed by its max (p99 met)", "P11 (<= 50ms per answer with 10000 devices): MISSED"} {
		require.Contains(t, s, want)
	}
	rep.Met = true
	out.Reset()
	printAPI(&out, rep)
	require.True(t, strings.HasSuffix(out.String(), ": met\n"))
	require.Equal(t, "missed", apiVerdict(Dist{P99: 51 * ms, Max: 51 * ms}))
	require.Equal(t, "met", apiVerdict(Dist{P99: 50 * ms, Max: 50 * ms}))
}
