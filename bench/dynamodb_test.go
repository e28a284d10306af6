//go:build !device

package bench

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/dynamotest"
)

// TestRunDynamoDBSmoke runs the DynamoDB benchmark at a tiny size on
// DynamoDB Local (IOTOD_DYNAMODB_URL): it checks both figures, the ratio
// and the latency are printed, not any value.
func TestRunDynamoDBSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	url := dynamotest.URL(t)
	var out bytes.Buffer
	err := RunDynamoDB(context.Background(), DynamoDBOptions{Endpoint: url, Dir: t.TempDir(), Changes: 300, Concurrency: 2, Runs: 1, Latency: 10, Rate: 100, Out: &out})
	require.NoError(t, err)
	for _, want := range []string{"P6 cloud apply into DynamoDB", "iotod db.Apply, dynamodb store", "changes/s", "raw BatchWriteItem, 25 items/call", "items/s", "ratio", "bar: >= 0.9x", "Stream to device", "p50", "p99"} {
		require.Contains(t, out.String(), want)
	}
	t.Log(out.String())
}
