package db_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
)

func openSide(t *testing.T, side schema.Side, site string) *env {
	testenv.NeedBadger(t)
	t.Helper()
	ctx := context.Background()
	sch, err := schema.Load("testdata/schema.json5")
	require.NoError(t, err)
	cfg := badger.NewDefaultConfig()
	cfg.Path = t.TempDir()
	st, err := badger.Open(ctx, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close(ctx) })
	d, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: site, Side: side})
	require.NoError(t, err)
	return &env{db: d, store: st}
}

func userChange(t *testing.T, v pipeline.Version, name string) pipeline.Change {
	item, err := json.Marshal(map[string]any{"pk": "account#a1", "sk": "user#x@y", "accountId": "a1", "email": "x@y", "name": name, "updated": "2026-01-01T00:00:00.000Z"})
	require.NoError(t, err)
	return pipeline.Change{Model: "User", Op: pipeline.OpUpsert, Key: pipeline.Key{PK: "account#a1", SK: "user#x@y"}, Item: item, Version: v, Origin: v.Origin}
}

func TestApplyRemoteLastWriterWinsAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dev := openSide(t, schema.SideDevice, "dev1")
	var events []db.Event
	dev.db.OnChange("User", func(_ context.Context, ev db.Event) { events = append(events, ev) })
	v1 := pipeline.Version{Wall: 100, Origin: "cloud"}
	v2 := pipeline.Version{Wall: 200, Origin: "cloud"}
	tie := pipeline.Version{Wall: 200, Origin: "a-site"} // same wall and counter: origin breaks the tie

	res, err := dev.db.ApplyRemote(ctx, []pipeline.Change{userChange(t, v2, "second"), userChange(t, v1, "first"), userChange(t, v2, "second")})
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, false}, []bool{res[0].Applied, res[1].Applied, res[2].Applied}, "older and duplicate versions are no-ops")
	got, err := dev.db.Get(ctx, "User", db.Item{"accountId": "a1", "email": "x@y"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	require.Equal(t, "second", got["name"])
	require.Equal(t, v2.String(), got[db.VersionAttr])

	res, err = dev.db.ApplyRemote(ctx, []pipeline.Change{userChange(t, tie, "tie")})
	require.NoError(t, err)
	require.False(t, res[0].Applied, `"cloud" > "a-site" on a tie`)

	require.Len(t, events, 1)
	require.True(t, events[0].Remote)
	require.Equal(t, "cloud", events[0].Origin)
	depth := dev.outboxDepth(t)
	require.Zero(t, depth, "a device never sends a remote change back")

	// A local write after a remote one orders after it, whatever the wall clock.
	up, err := dev.db.Update(ctx, "User", db.Item{"accountId": "a1", "email": "x@y", "name": "local"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	lv, err := pipeline.ParseVersion(up[db.VersionAttr].(string))
	require.NoError(t, err)
	require.Equal(t, 1, lv.Compare(v2))
}

func TestRemoveTombstoneBeatsLateUpdate(t *testing.T) {
	ctx := context.Background()
	dev := openSide(t, schema.SideDevice, "dev1")
	v1 := pipeline.Version{Wall: 100, Origin: "cloud"}
	v3 := pipeline.Version{Wall: 300, Origin: "cloud"}
	_, err := dev.db.ApplyRemote(ctx, []pipeline.Change{userChange(t, v1, "a")})
	require.NoError(t, err)
	rm := pipeline.Change{Model: "User", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "account#a1", SK: "user#x@y"}, Version: v3, Origin: "cloud"}
	res, err := dev.db.ApplyRemote(ctx, []pipeline.Change{rm})
	require.NoError(t, err)
	require.True(t, res[0].Applied)
	late := userChange(t, pipeline.Version{Wall: 200, Origin: "cloud"}, "late")
	res, err = dev.db.ApplyRemote(ctx, []pipeline.Change{late})
	require.NoError(t, err)
	require.False(t, res[0].Applied, "the tombstone is newer")
	_, err = dev.db.Get(ctx, "User", db.Item{"accountId": "a1", "email": "x@y"}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound)
	// A new local create on the removed key works and is newer than the tombstone.
	_, err = dev.db.Create(ctx, "User", db.Item{"accountId": "a1", "email": "x@y", "name": "again"}, nil)
	require.NoError(t, err)
}

func TestApplyRemoteRefusesBadChanges(t *testing.T) {
	ctx := context.Background()
	dev := openSide(t, schema.SideDevice, "dev1")
	v := pipeline.Version{Wall: 1, Origin: "cloud"}
	bad := userChange(t, v, "x")
	bad.Item = []byte(`{"pk":"account#a1","sk":"user#x@y","accountId":"a1","email":"x@y","age":"old","updated":"2026-01-01T00:00:00.000Z"}`)
	unknown := userChange(t, v, "x")
	unknown.Model = "Nope"
	garbled := userChange(t, v, "x")
	garbled.Item = []byte(`[1,2`)
	cloudOnly := userChange(t, v, "x")
	cloudOnly.Model = "Secret"
	res, err := dev.db.ApplyRemote(ctx, []pipeline.Change{bad, unknown, garbled, cloudOnly, userChange(t, v, "good")})
	require.NoError(t, err)
	require.ErrorIs(t, res[0].Err, pipeline.ErrInvalid)
	require.ErrorContains(t, res[0].Err, "User.age: want a number")
	require.ErrorIs(t, res[1].Err, pipeline.ErrNotFound)
	require.ErrorIs(t, res[2].Err, pipeline.ErrInvalid)
	require.ErrorIs(t, res[3].Err, pipeline.ErrNotFound, "cloud-only models do not exist on a device")
	require.True(t, res[4].Applied, "one bad change does not stop the others")
}

func TestCloudPassesRemoteChangesOnWithTheirOrigin(t *testing.T) {
	ctx := context.Background()
	cloud := openSide(t, schema.SideCloud, "cloud")
	v := pipeline.Version{Wall: 5, Origin: "dev1"}
	_, err := cloud.db.ApplyRemote(ctx, []pipeline.Change{userChange(t, v, "from-dev1")})
	require.NoError(t, err)
	changes, err := cloud.store.Outbox().Read(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, changes, 1, "User syncs both: the cloud passes it on towards other devices")
	require.Equal(t, "dev1", changes[0].Origin, "so the down sender can skip its origin")
	require.Equal(t, v, changes[0].Version)

	_, err = cloud.db.Create(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1}, nil)
	require.NoError(t, err)
	_, err = cloud.db.Create(ctx, "Account", db.Item{"name": "down model"}, nil)
	require.NoError(t, err)
	changes, err = cloud.store.Outbox().Read(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, changes, 2, "on the cloud, up-only Reading stays; down Account goes to the outbox")
	require.Equal(t, "Account", changes[1].Model)
	require.Equal(t, "cloud", changes[1].Origin)
}
