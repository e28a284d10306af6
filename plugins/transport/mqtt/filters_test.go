package mqtt

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

// Work channels are shared among cloud workers; ack channels are heard
// whole by every worker, so each gets the acks of its own batches.
func TestFiltersShareWorkButNotAcks(t *testing.T) {
	topics, err := parseTemplate("iotod/{site}/{channel}")
	require.NoError(t, err)
	tr := &Transport{cfg: Config{ShareGroup: "iotod"}, topics: topics}
	cases := []struct {
		ch   pipeline.Channel
		site string
		want []string
	}{
		{pipeline.ChanUp, "", []string{"$share/iotod/iotod/+/up"}},
		{pipeline.ChanSync, "", []string{"$share/iotod/iotod/+/sync"}},
		{pipeline.ChanDownAck, "", []string{"iotod/+/down-ack"}},
		{pipeline.ChanUpAck, "", []string{"iotod/+/up-ack"}},
		{pipeline.ChanDown, "d1", []string{"iotod/d1/down", "iotod/all/down"}},
		{pipeline.ChanUpAck, "d1", []string{"iotod/d1/up-ack"}},
	}
	for _, c := range cases {
		require.Equal(t, c.want, tr.filtersFor(c.ch, c.site), "%s %q", c.ch, c.site)
	}
}
