package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// ?storage=NAME addresses another store of the process, or the local one
// by its own name in the config; an unknown name is a 404 naming the known
// ones.
func TestStorageParamAddressesOtherStores(t *testing.T) {
	ctx := context.Background()
	local, cloud := openDB(t), openDB(t)
	srv, err := api.NewServer(api.Options{DB: local, Name: "local", Stores: map[string]api.Database{"cloud": cloud}, Site: "s"})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c, err := api.NewClient(hs.URL, "")
	require.NoError(t, err)

	c.Storage = "cloud"
	_, err = c.Create(ctx, "Status", db.Item{"temp": 1}, nil)
	require.NoError(t, err)
	res, err := cloud.Find(ctx, "Status", db.Item{}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 1, "written to the cloud store")
	res, err = local.Find(ctx, "Status", db.Item{}, nil)
	require.NoError(t, err)
	require.Empty(t, res.Items, "not to the local one")

	c.Storage = "local"
	_, err = c.Create(ctx, "Status", db.Item{"temp": 2}, nil)
	require.NoError(t, err, "the local store by its config name")
	res, err = local.Find(ctx, "Status", db.Item{}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 1, "written to the local store")

	c.Storage = "nope"
	_, err = c.Find(ctx, "Status", db.Item{}, nil)
	require.True(t, errors.Is(err, pipeline.ErrNotFound))
	require.ErrorContains(t, err, `storage "nope" is not served here (known: cloud, local)`)
}
