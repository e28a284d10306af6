package pipeline_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

// TestProtocolExamples parses every JSON example of docs/protocol.md as
// the message it shows, strictly, and validates it.
func TestProtocolExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```json\\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	require.Len(t, blocks, 5)
	strict := func(raw string, v any) {
		dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(v), raw)
	}
	for i, want := range []string{"batch", "batch", "ack", "sync", "batch"} {
		raw := blocks[i][1]
		switch want {
		case "batch":
			var b pipeline.Batch
			strict(raw, &b)
			require.NoError(t, b.Validate())
			require.Equal(t, pipeline.ProtocolVersion, b.V)
			for _, c := range b.Changes {
				require.Equal(t, c.Origin, c.Version.Origin)
				if c.Op != pipeline.OpRemove {
					var item map[string]any
					require.NoError(t, json.Unmarshal(c.Item, &item))
					require.Equal(t, c.Version.String(), item["_version"], "the item's _version is the change's version")
				}
			}
		case "ack":
			var a pipeline.Ack
			strict(raw, &a)
			require.Equal(t, pipeline.ProtocolVersion, a.V)
			require.NotEmpty(t, a.Rejected[0].Reason)
		case "sync":
			var r pipeline.SyncRequest
			strict(raw, &r)
			_, err := pipeline.ParseVersion(r.Cursor)
			require.NoError(t, err)
		}
	}
	var synced pipeline.Batch
	strict(blocks[4][1], &synced)
	require.Equal(t, pipeline.KindSynced, synced.Kind)
}
