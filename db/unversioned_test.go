package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// An item stored without a version (written by OneTable or an SDK
// straight into the cloud's table) is ordered by its updated time: a
// device change older than it loses, a newer one wins.
func TestItemWithoutVersionIsOrderedByUpdated(t *testing.T) {
	ctx := context.Background()
	cloud, st := openHostileCloud(t, 0)
	written := time.Now().Add(-time.Minute).UTC()
	key := pipeline.Key{PK: "device#dev1", SK: "reading#R1"}
	item := fmt.Sprintf(`{"pk":"device#dev1","sk":"reading#R1","_type":"Reading","deviceId":"dev1","id":"R1","temp":1,"updated":%q}`,
		written.Format("2006-01-02T15:04:05.000Z"))
	require.NoError(t, st.Update(ctx, func(tx pipeline.Tx) error {
		return tx.Put(ctx, &pipeline.Record{Key: key, Model: "Reading", Item: []byte(item)})
	}))
	change := func(at time.Time, temp int) pipeline.Change {
		return pipeline.Change{Model: "Reading", Op: pipeline.OpUpsert, Key: key,
			Item:    []byte(fmt.Sprintf(`{"deviceId":"dev1","id":"R1","temp":%d}`, temp)),
			Version: pipeline.Version{Wall: at.UnixMilli(), Origin: "dev1"}, Origin: "dev1"}
	}
	src := db.Source{Site: "dev1", Owner: "deviceId"}
	res, err := cloud.Apply(ctx, src, []pipeline.Change{change(written.Add(-time.Second), 2)})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	assert.False(t, res[0].Applied, "a change older than the item's updated time loses")
	got, err := cloud.Get(ctx, "Reading", db.Item{"deviceId": "dev1", "id": "R1"}, nil)
	require.NoError(t, err)
	assert.Equal(t, "1", fmt.Sprint(got["temp"]))

	res, err = cloud.Apply(ctx, src, []pipeline.Change{change(written.Add(time.Second), 3)})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	assert.True(t, res[0].Applied, "a newer change wins")
	got, err = cloud.Get(ctx, "Reading", db.Item{"deviceId": "dev1", "id": "R1"}, nil)
	require.NoError(t, err)
	assert.Equal(t, "3", fmt.Sprint(got["temp"]))
}
