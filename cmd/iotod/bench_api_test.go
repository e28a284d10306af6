//go:build !device || !(386 || arm || mips || mipsle)

package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/bench"
	"github.com/iotod/iotod/internal/testenv"
)

// TestBenchAPIJSON runs `iotod bench api` at a tiny size with --json: the
// flags reach the bench and the output is one JSON document.
func TestBenchAPIJSON(t *testing.T) {
	testenv.NeedBadger(t)
	var out bytes.Buffer
	cmd := newBenchCmd()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"api", "--devices", "120", "--requests", "2", "--json", "--dir", t.TempDir()})
	require.NoError(t, cmd.Execute())
	var r bench.APIReport
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&r), "one JSON document")
	require.False(t, dec.More(), "more than one document")
	require.Equal(t, 120, r.Devices)
	require.Equal(t, 2, r.Requests)
	require.Equal(t, 2, r.Baseline.Latency.N)
	require.NotEmpty(t, r.Endpoints)
	require.InDelta(t, 50, r.BarMS, 0)
}
