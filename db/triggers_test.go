package db_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
)

// An apply queues a trigger delivery for each change it applies, in the
// same transaction: not for a refused change, nor for one already
// applied; an item too large to queue whole is queued without it.
func TestApplyQueuesTriggerDeliveries(t *testing.T) {
	ctx := context.Background()
	cloud := openSide(t, schema.SideCloud, "cloud").db
	now := time.Now().UnixMilli()
	change := func(id string, ctr uint32, item string) pipeline.Change {
		return pipeline.Change{Model: "Reading", Op: pipeline.OpUpsert, Key: pipeline.Key{PK: "reading#dev1", SK: "reading#" + id},
			Item:    []byte(item),
			Version: pipeline.Version{Wall: now, Counter: ctr, Origin: "dev1"}, Origin: "dev1"}
	}
	good := change("00000001", 1, `{"deviceId":"dev1","seq":1,"temp":5}`)
	bad := change("00000002", 2, `{"deviceId":"dev1","seq":"not a number"}`)
	big := change("00000003", 3, `{"deviceId":"dev1","seq":3,"tags":["`+strings.Repeat("x", db.MaxItemSize-700)+`"]}`)
	src := db.Source{Site: "dev1", Owner: "deviceId", Triggers: []string{"ingest:a", "ingest:b"}}
	res, err := cloud.Apply(ctx, src, []pipeline.Change{good, bad, big})
	require.NoError(t, err)
	require.True(t, res[0].Applied)
	require.Error(t, res[1].Err)
	require.NoError(t, res[2].Err, "an item near the size limit is stored")
	for _, name := range []string{"ingest:a", "ingest:b"} {
		q, err := cloud.PendingTriggers(ctx, name, 0, false)
		require.NoError(t, err)
		require.Len(t, q, 2, name)
		assert.True(t, q[1].ItemOmitted, "the large item is left out of the queue")
		assert.Zero(t, len(q[1].Change.Item), "no item")
		assert.Equal(t, good.Key, q[0].Change.Key)
		assert.JSONEq(t, string(good.Item), string(q[0].Change.Item))
	}
	// The same batch again applies nothing and queues nothing.
	_, err = cloud.Apply(ctx, src, []pipeline.Change{good})
	require.NoError(t, err)
	q, err := cloud.PendingTriggers(ctx, "ingest:a", 0, false)
	require.NoError(t, err)
	before := len(q)
	assert.Equal(t, 2, before, "the same batch again queues nothing")
	require.NoError(t, cloud.SettleTriggers(ctx, "ingest:a", q[:1], "", 0))
	q, err = cloud.PendingTriggers(ctx, "ingest:a", 0, false)
	require.NoError(t, err)
	assert.Len(t, q, before-1, "settled deliveries leave the queue")
}

// A batch larger than one badger transaction (a small memtable) is
// applied in several, with its trigger deliveries (a large item goes to
// badger's value log and fits too).
func TestApplySplitsWhatOneTransactionCannotHold(t *testing.T) {
	testenv.NeedBadger(t)
	ctx := context.Background()
	sch, err := schema.Load("testdata/schema.json5")
	require.NoError(t, err)
	cfg := badger.NewDefaultConfig()
	cfg.Path, cfg.MemTableSize = t.TempDir(), 1<<20 // about 150 KB per transaction
	st, err := badger.Open(ctx, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close(ctx) })
	cloud, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "cloud", Side: schema.SideCloud})
	require.NoError(t, err)

	now := time.Now().UnixMilli()
	tag := strings.Repeat("t", 2000)
	var changes []pipeline.Change
	for i := range 300 {
		item := fmt.Sprintf(`{"deviceId":"dev1","seq":%d,"tags":[%q]}`, i, tag)
		if i == 150 {
			item = fmt.Sprintf(`{"deviceId":"dev1","seq":%d,"tags":[%q]}`, i, strings.Repeat("x", 300_000))
		}
		changes = append(changes, pipeline.Change{Model: "Reading", Op: pipeline.OpUpsert,
			Key: pipeline.Key{PK: "reading#dev1", SK: fmt.Sprintf("reading#%08d", i)}, Item: []byte(item),
			Version: pipeline.Version{Wall: now, Counter: uint32(i), Origin: "dev1"}, Origin: "dev1"})
	}
	src := db.Source{Site: "dev1", Owner: "deviceId", Triggers: []string{"ingest:a", "ingest:b", "ingest:c"}}
	res, err := cloud.Apply(ctx, src, changes)
	require.NoError(t, err)
	for i, r := range res {
		require.NoError(t, r.Err, "change %d", i)
		require.True(t, r.Applied, "change %d", i)
	}
	q, err := cloud.PendingTriggers(ctx, "ingest:c", 0, false)
	require.NoError(t, err)
	assert.Len(t, q, 300, "each applied change queued once per trigger")
}
