package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

// A store type the build leaves out (a device build's, say) is reported
// at its line with the registry's reason, not as an unknown type.
func TestLoadOmittedType(t *testing.T) {
	reg := testRegistry(t)
	why := "not in this device build (64-bit device builds include badger; the full build has both)"
	require.NoError(t, reg.Omit(pipeline.Omitted{Kind: pipeline.KindStorage, Type: "sqlite", Why: why}))
	sch, err := filepath.Abs("testdata/bad/schema.json5")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "device.yaml")
	require.NoError(t, os.WriteFile(path, []byte("site: dev-1\nschema: "+sch+"\nstorage:\n  local: {type: sqlite, path: ./data}\n  other: {type: rocks}\n"), 0o600))
	_, err = LoadWith(reg, envOf(nil), path)
	require.ErrorIs(t, err, pipeline.ErrInvalid)
	var errs Errors
	require.ErrorAs(t, err, &errs)
	require.Len(t, errs, 2, "errors:\n%v", err)
	assert.Equal(t, path+`:4: storage.local.type: storage type "sqlite" is `+why, errs[0].Error())
	assert.Contains(t, errs[1].Error(), `:5: storage.other.type: unknown storage type "rocks" (known: badger)`)
}
