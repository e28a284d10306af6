package runner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
)

// A sender whose far side never acks stops reading its outbox once its
// flights hold max_in_flight_bytes: a backlog of large items does not
// end up in memory.
func TestSenderBoundsInFlightBytes(t *testing.T) {
	_, device := split(t)
	const limit = 256 << 10
	device.Pipelines = []PipelinePlan{device.Pipelines[0]} // up only: nothing on the far side acks
	device.Pipelines[0].MaxInFlightBytes = limit
	device.Pipelines[0].AckTimeout = time.Hour
	r := start(t, device)
	ctx := context.Background()
	big := strings.Repeat("x", 20<<10)
	const items = 200 // 4 MB of items
	for i := 0; i < items; i++ {
		_, err := r.DB("local").Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": i, "tags": []any{big}}, nil)
		require.NoError(t, err)
	}
	s := r.units[0].sender
	// The sender's state belongs to its goroutine: read it through the
	// status it publishes.
	read := func() (flying, bytes int) { st := s.snapshot(); return st.InFlight, st.InFlightBytes }
	require.Eventually(t, func() bool { f, _ := read(); return f > 0 }, 5*time.Second, 10*time.Millisecond, "sending")
	time.Sleep(500 * time.Millisecond)
	f, b := read()
	t.Logf("in flight: %d changes, %d bytes (limit %d)", f, b, limit)
	assert.Less(t, f, items, "it stopped before the whole backlog")
	assert.LessOrEqual(t, b, limit+(1<<20)+(128<<10), "at most the limit, one outbox read and one batch over")
}
