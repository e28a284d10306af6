package db_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// capturing is a store whose change stream would feed its outbox: it
// counts the Emits it is asked for (there must be none).
type capturing struct {
	pipeline.Store
	emits atomic.Int64
}

func (c *capturing) CapturesChanges() bool { return true }

func (c *capturing) Update(ctx context.Context, fn func(pipeline.Tx) error) error {
	return c.Store.Update(ctx, func(tx pipeline.Tx) error { return fn(countingTx{tx, &c.emits}) })
}

type countingTx struct {
	pipeline.Tx
	n *atomic.Int64
}

func (t countingTx) Emit(ctx context.Context, ch *pipeline.Change) error {
	t.n.Add(1)
	return t.Tx.Emit(ctx, ch)
}

// Over a store that captures its own changes, neither local writes nor
// applied remote changes are emitted, and the version kept with the item
// carries the origin the stream needs.
func TestCapturingStoreGetsNoEmits(t *testing.T) {
	ctx := context.Background()
	_, st := openHostileCloud(t, 0)
	cs := &capturing{Store: st}
	sch := mustSchema(t)
	cloud, err := db.Open(ctx, db.Options{Schema: sch, Store: cs, Site: "cloud", Side: schema.SideCloud})
	require.NoError(t, err)
	_, err = cloud.Create(ctx, "Setting", db.Item{"deviceId": "dev1", "name": "mode", "value": "eco"}, nil)
	require.NoError(t, err, "Setting syncs both: a plain store would emit it")
	res, err := cloud.Apply(ctx, db.Source{Site: "dev1", Owner: "deviceId"}, []pipeline.Change{{Model: "Setting", Op: pipeline.OpUpsert,
		Key: pipeline.Key{PK: "device#dev1", SK: "level"}, Item: []byte(`{"deviceId":"dev1","name":"level","value":"3"}`),
		Version: pipeline.Version{Wall: time.Now().UnixMilli(), Origin: "dev1"}, Origin: "dev1"}})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	assert.Zero(t, cs.emits.Load())
	got, err := cloud.Get(ctx, "Setting", db.Item{"deviceId": "dev1", "name": "level"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	v, err := pipeline.ParseVersion(got[db.VersionAttr].(string))
	require.NoError(t, err)
	assert.Equal(t, "dev1", v.Origin, "the stored version names the origin")
}

func mustSchema(t *testing.T) *schema.Schema {
	t.Helper()
	sch, err := schema.Load("testdata/hostile-schema.json5")
	require.NoError(t, err)
	return sch
}
