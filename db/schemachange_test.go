package db_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/schema"
)

// A schema change that removes a field must not lose or break stored items:
// they keep loading, the dropped attribute is not shown, and it stays in
// storage (so restoring the field brings it back).
func TestSchemaChangeRemovingAFieldKeepsItemsLoading(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := open(t, dir)
	_, err := e.db.Create(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1, "temp": 21, "on": true}, nil)
	require.NoError(t, err)
	require.NoError(t, e.store.Close(ctx))

	src, err := os.ReadFile("testdata/schema.json5")
	require.NoError(t, err)
	v2 := strings.Replace(string(src), "temp: { type: 'number' },", "", 1)
	require.NotEqual(t, string(src), v2, "the test removes the temp field")
	v2path := filepath.Join(t.TempDir(), "schema-v2.json5")
	require.NoError(t, os.WriteFile(v2path, []byte(v2), 0o644))
	sch, err := schema.Load(v2path)
	require.NoError(t, err)
	st := testenv.OpenStore(t, dir)
	d2, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "dev1"})
	require.NoError(t, err)

	got, err := d2.Get(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1}, nil)
	require.NoError(t, err)
	require.Equal(t, true, got["on"])
	require.NotContains(t, got, "temp", "the dropped field is not shown")
	_, err = d2.Update(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1, "on": false}, nil)
	require.NoError(t, err, "items written under the old schema can be updated")
	_, err = d2.Create(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 2, "temp": 1}, nil)
	require.ErrorContains(t, err, "Reading.temp: unknown attribute", "new writes follow the new schema")

	raw, err := d2.Get(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1}, &db.Params{Hidden: true})
	require.NoError(t, err)
	require.NotContains(t, raw, "temp")
	var stored db.Item
	res, err := d2.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 1)
	stored = res.Items[0]
	require.Equal(t, false, stored["on"])

	require.NoError(t, st.Close(ctx))
	e3 := open(t, dir) // the original schema again
	back, err := e3.db.Get(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1}, nil)
	require.NoError(t, err)
	require.Equal(t, "21", string(back["temp"].(json.Number)), "the attribute was kept in storage")
}
