package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/plugins/transport/inproc"
)

// TestRunDBSmoke runs the benchmark at a tiny size so it cannot rot: it
// checks every section and baseline is printed, not any figure.
func TestRunDBSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	var out bytes.Buffer
	err := RunDB(context.Background(), DBOptions{Dir: t.TempDir(), Writers: 4, Duration: 200 * time.Millisecond, Runs: 1, ReadItems: 2000, Out: &out})
	require.NoError(t, err)
	for _, want := range []string{"P1 durable writes", "raw badger, SyncWrites", "P2 async writes", "raw badger, 1000-key", "raw badger, one txn per", "iotod find, shared items", "first read of every item", "P9 reads over 2000 items", "iotod get", "raw badger get", "iotod 100-item find", "raw badger 100-key scan", "memory per stored item"} {
		require.Contains(t, out.String(), want)
	}
}

// TestRunDBSQLiteSmoke runs the benchmark on the SQLite store at a tiny
// size: every section prints beside raw SQLite.
func TestRunDBSQLiteSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	var out bytes.Buffer
	err := RunDB(context.Background(), DBOptions{Dir: t.TempDir(), Store: "sqlite", Writers: 4, Duration: 200 * time.Millisecond, Runs: 1, ReadItems: 2000, Out: &out})
	require.NoError(t, err)
	for _, want := range []string{"store sqlite", "raw sqlite, synchronous=FULL", "raw sqlite, 1000-key", "raw sqlite, one txn per", "raw sqlite get", "raw sqlite 100-key scan", "iotod get"} {
		require.Contains(t, out.String(), want)
	}
}

// TestRunDBJSON checks --json: one document with every section, each
// figure measured (a rate above zero), and nothing else on the output.
func TestRunDBJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	var out bytes.Buffer
	err := RunDB(context.Background(), DBOptions{Dir: t.TempDir(), Writers: 4, Duration: 200 * time.Millisecond, Runs: 1, ReadItems: 2000, Readers: []int{1, 2}, Out: &out, JSON: true})
	require.NoError(t, err)
	var r DBReport
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&r), "the output is one JSON document")
	require.False(t, dec.More(), "more than one document")
	require.NotNil(t, r.P1)
	require.NotNil(t, r.P2)
	for _, v := range []float64{r.P1.Rate, r.P1.Baseline, r.P2.Rate, r.P2.RawBatched, r.P2.RawPerWrite} {
		require.Positive(t, v)
	}
	require.Len(t, r.P9, 2, "one P9 entry per number of readers")
	for _, p := range r.P9 {
		require.Equal(t, 2000, p.Items)
		for _, f := range []ReadFigure{p.Get, p.RawGet, p.Find, p.FindShared, p.RawScan} {
			require.Positive(t, f.Rate)
			require.Positive(t, f.P50)
		}
	}
	require.NotNil(t, r.P9[1].Memory)
}

// TestRunPipelineSmoke runs the pipeline benchmark at a tiny size: it
// checks both measurements complete and print, not any figure.
func TestRunPipelineSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	var out bytes.Buffer
	err := RunPipeline(context.Background(), PipelineOptions{Dir: t.TempDir(), Changes: 2000, Runs: 1, Transport: inproc.NewFactory(), Out: &out})
	require.NoError(t, err)
	for _, want := range []string{"through the pipeline runner", "direct store-to-store copy", "framework overhead"} {
		require.Contains(t, out.String(), want)
	}
}

// TestRunTriggersSmoke runs the trigger overhead benchmark at a tiny
// size: both figures are printed (not checked).
func TestRunTriggersSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	var out bytes.Buffer
	require.NoError(t, RunTriggers(context.Background(), TriggerOptions{Dir: t.TempDir(), Changes: 1000, Runs: 1, Out: &out}))
	for _, want := range []string{"apply, no trigger", "apply, 3 triggers queued", "ratio"} {
		require.Contains(t, out.String(), want)
	}
}

// TestRunPluginSmoke builds the example redact plugin and runs P7 at a
// tiny size: every batch size prints both figures (not checked).
func TestRunPluginSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	bin := filepath.Join(t.TempDir(), "redact")
	out, err := exec.Command("go", "build", "-o", bin, "../examples/plugins/redact").CombinedOutput()
	require.NoError(t, err, "%s", out)
	var buf bytes.Buffer
	require.NoError(t, RunPlugin(context.Background(), PluginOptions{Path: bin, Changes: 200, Runs: 1, Out: &buf}))
	for _, want := range []string{"batch     1:", "batch   100:", "batch  1000:", "external"} {
		require.Contains(t, buf.String(), want)
	}
}

// The P1 latency figure is the worst of the runs: a maximum in any run
// is reported, not only the maximum of the run with the worst p99.
func TestWorseKeepsEveryRunsMaximum(t *testing.T) {
	a := Dist{N: 10, P50: time.Millisecond, P99: 20 * time.Millisecond, Max: 30 * time.Millisecond}
	b := Dist{N: 5, P50: 2 * time.Millisecond, P99: 10 * time.Millisecond, Max: 90 * time.Millisecond}
	w := worse(a, b)
	if w.Max != 90*time.Millisecond || w.P99 != 20*time.Millisecond || w.P50 != 2*time.Millisecond || w.N != 15 {
		t.Fatalf("worse(%v, %v) = %v", a, b, w)
	}
}
