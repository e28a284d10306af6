package bench

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRunReplicateSmoke runs P3, P4 and P5 at tiny sizes through the
// embedded broker: it checks every section and baseline is printed, not
// any figure.
func TestRunReplicateSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	var out bytes.Buffer
	err := RunReplicate(context.Background(), ReplicateOptions{Dir: t.TempDir(), Runs: 1,
		Changes: 2000, Writers: 2, TxSize: 50, RawMessages: 200,
		Latency: 40, Rate: 400, Down: 20, Offline: 2000, Live: 5, Out: &out})
	require.NoError(t, err, out.String())
	for _, want := range []string{
		"P3 sustained replication up", "raw paho QoS 1, 1 publisher", "raw paho QoS 1, 8 publishers", "ratio to 1 publisher",
		"P4 latency", "device commit -> applied in the cloud store", "raw paho QoS 1 publish -> delivered", "cloud commit -> applied in the device store",
		"P5 catch-up", "drained", "memory during the drain", "live creates during the drain", "same creates, pipelines idle",
	} {
		require.Contains(t, out.String(), want)
	}
}
