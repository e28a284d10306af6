package runner

import (
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

// An ack rejecting many changes with long reasons is cut to fit the
// transport's maximum, so it is always sent.
func TestAckIsFittedToTheMaximumPayload(t *testing.T) {
	ack := &pipeline.Ack{V: 1, Batch: "b1", Applied: 3}
	for range 2000 {
		ack.Rejected = append(ack.Rejected, pipeline.Reject{Model: "Reading", Key: pipeline.Key{PK: strings.Repeat("p", 200), SK: "s"},
			Reason: strings.Repeat("r", pipeline.MaxReasonLen)})
	}
	full, err := json.Marshal(ack)
	require.NoError(t, err)
	require.Greater(t, len(full), 128*1024)

	for _, max := range []int{128 * 1024, 16 * 1024, 512} {
		payload, err := fitAck(ack, max)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(payload), max, "max %d", max)
		got, err := pipeline.DecodeAck(payload, 0)
		require.NoError(t, err)
		assert.Equal(t, "b1", got.Batch)
		assert.Equal(t, 3, got.Applied)
		last := got.Rejected[len(got.Rejected)-1]
		assert.Contains(t, last.Reason, "more rejected changes", "max %d: what was left out is counted", max)
	}
	small := &pipeline.Ack{V: 1, Batch: "b2", Rejected: []pipeline.Reject{{Reason: "short"}}}
	payload, err := fitAck(small, 1024)
	require.NoError(t, err)
	want, _ := json.Marshal(small)
	assert.Equal(t, string(want), string(payload), "an ack that fits is sent as it is")
}

// A device may send plain change batches only.
func TestDevicesMaySendChangeBatchesOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    pipeline.Batch
		ok   bool
	}{
		{"changes", pipeline.Batch{Kind: pipeline.KindChanges}, true},
		{"no kind", pipeline.Batch{}, true},
		{"synced marker", pipeline.Batch{Kind: pipeline.KindSynced}, false},
		{"catch-up answer", pipeline.Batch{CatchUp: true}, false},
		{"request", pipeline.Batch{Request: "r1"}, false},
		{"count", pipeline.Batch{Count: 3}, false},
		{"before cursor", pipeline.Batch{Before: "0000000000000001.00000000.cloud"}, false},
		{"after cursor", pipeline.Batch{After: "0000000000000001.00000000.cloud"}, false},
	} {
		err := fromDevice(&tc.b)
		if tc.ok {
			assert.NoError(t, err, tc.name)
			continue
		}
		assert.ErrorIs(t, err, pipeline.ErrInvalid, tc.name)
		assert.True(t, pipeline.IsPermanent(err), tc.name)
	}
}
