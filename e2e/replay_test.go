package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// TestReplayedBatches publishes raw batches as the device user: a batch
// twice, the same changes again under a new id, an old version after a
// new one, a remove then the create before it, two versions of one key
// in reverse order in one batch. Each is acknowledged as applied, and the
// cloud's items do not change after the first apply of the newest
// version.
func TestReplayedBatches(t *testing.T) {
	r := newCloud(t, inCloud, 1, "dev-1")
	dev := dialRaw(t, r.addr, "dev-1")
	cloud := r.cloud().client()
	props := db.Item{"deviceId": "dev-1"}
	now := time.Now().UnixMilli()
	v := func(ms int64) pipeline.Version { return versionAt("dev-1", now+ms, 0) }
	rd := func(id string, ms int64, op pipeline.Op, value any) pipeline.Change {
		return reading("dev-1", "dev-1", id, v(ms), op, value)
	}
	applied := func(b *pipeline.Batch) {
		t.Helper()
		a := dev.send(b)
		require.Empty(t, a.Rejected, "batch %s", b.ID)
		require.Equal(t, len(b.Changes), a.Applied, "batch %s: every change applied or already applied", b.ID)
	}
	unchanged := func(what string, before map[string]db.Item) {
		t.Helper()
		sameItems(t, what, before, items(t, cloud, "Reading", props))
	}

	// A batch, then the same batch again (same id).
	a := batchOf("dev-1", rd("x1", 0, pipeline.OpCreate, 1), rd("x2", 0, pipeline.OpCreate, 2))
	applied(a)
	after := items(t, cloud, "Reading", props)
	require.Len(t, after, 2)
	applied(a)
	unchanged("the same batch twice", after)

	// A newer version, then the old one again under a new id, then the
	// newer one replayed under another id.
	b := batchOf("dev-1", rd("x1", 10, pipeline.OpUpdate, 11))
	applied(b)
	after = items(t, cloud, "Reading", props)
	assert.Equal(t, "11", fmtValue(after["reading#dev-1|reading#x1"]))
	applied(batchOf("dev-1", rd("x1", 0, pipeline.OpCreate, 1)))
	unchanged("an old version after a new one", after)
	applied(batchOf("dev-1", b.Changes...))
	unchanged("a replayed newer version", after)

	// A remove, then the create from before it: the tombstone holds.
	applied(batchOf("dev-1", rd("x2", 20, pipeline.OpRemove, nil)))
	after = items(t, cloud, "Reading", props)
	require.NotContains(t, after, "reading#dev-1|reading#x2")
	applied(a)
	unchanged("the create replayed after the remove", after)

	// Reordered: the newer batch first, then the older; and two versions
	// of a key in one batch, newest first.
	applied(batchOf("dev-1", rd("x3", 40, pipeline.OpUpsert, 40)))
	applied(batchOf("dev-1", rd("x3", 30, pipeline.OpCreate, 30)))
	applied(batchOf("dev-1", rd("x4", 60, pipeline.OpUpsert, 60), rd("x4", 50, pipeline.OpCreate, 50)))
	after = items(t, cloud, "Reading", props)
	assert.Equal(t, "40", fmtValue(after["reading#dev-1|reading#x3"]))
	assert.Equal(t, "60", fmtValue(after["reading#dev-1|reading#x4"]))
	assert.Equal(t, v(60).String(), after["reading#dev-1|reading#x4"][db.VersionAttr])

	// Every batch so far, again, in reverse order: nothing changes.
	for _, c := range []pipeline.Change{rd("x4", 50, pipeline.OpCreate, 50), rd("x3", 30, pipeline.OpCreate, 30),
		rd("x2", 20, pipeline.OpRemove, nil), rd("x1", 10, pipeline.OpUpdate, 11), rd("x1", 0, pipeline.OpCreate, 1)} {
		applied(batchOf("dev-1", c))
	}
	unchanged("everything replayed in reverse", after)
	assert.Len(t, after, 3, "x1, x3, x4")
}

func fmtValue(it db.Item) string {
	if it == nil {
		return "<missing>"
	}
	return fmtAny(it["value"])
}
