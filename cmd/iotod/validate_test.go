package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/config"
	"github.com/iotod/iotod/internal/testenv"
)

const pipelinesConfig = `site: dev-1
schema: schema.json5
storage:
  local: {type: badger, path: dev}
  cloud: {type: badger, path: cloud, side: cloud, site: cloud}
transports:
  bus: {type: inproc}
pipelines:
  up:
    from: storage/local
    stages: [policy, {batch: {delay: 50ms, limit: 10KB}}]
    to: transport/bus
  ingest:
    from: transport/bus
    stages: [policy]
    to: storage/cloud
    triggers: [log]
api: {listen: 127.0.0.1:0}
`

func TestValidateMerged(t *testing.T) {
	testenv.NeedBadger(t) // its storages are badger: TestValidateFollowsBadgersPlatformRule
	base := writeConfig(t, pipelinesConfig)
	dir := filepath.Dir(base)
	override := filepath.Join(dir, "site.yaml")
	require.NoError(t, os.WriteFile(override, []byte("site: dev-2\npipelines:\n  ingest: {triggers: []}\n"), 0o600))

	out, err := execute(t, "validate", "-c", base, "-c", override)
	require.NoError(t, err)
	assert.Equal(t, "ok: "+base+", "+override+"\n"+
		"  site       dev-2\n"+
		"  schema     "+filepath.Join(dir, "schema.json5")+" (models Account, User)\n"+
		"  storage    cloud: badger, cloud side, site cloud\n"+
		"  storage    local: badger, device side, site dev-2\n"+
		"  transport  bus: inproc\n"+
		"  pipeline   ingest: transport/bus -> policy -> storage/cloud (up, on the cloud side)\n"+
		"  pipeline   up: storage/local -> policy -> batch -> transport/bus (up, on the device side)\n"+
		"  api        http://127.0.0.1:0\n", out)
	_, err = os.Stat(filepath.Join(dir, "dev"))
	assert.ErrorIs(t, err, os.ErrNotExist, "validate opens no storage")
}

func TestValidateEveryError(t *testing.T) {
	testenv.NeedBadger(t) // its storages are badger: TestValidateFollowsBadgersPlatformRule
	base := writeConfig(t, strings.NewReplacer(
		"limit: 10KB", "limit: 10 KB",
		"stages: [policy]", "stages: [log]",
		"to: storage/cloud", "to: storage/clod",
	).Replace(pipelinesConfig))
	override := filepath.Join(filepath.Dir(base), "site.yaml")
	require.NoError(t, os.WriteFile(override, []byte("storage:\n  local: {durability: maybe}\n"), 0o600))

	_, err := execute(t, "validate", "-c", base, "-c", override)
	var errs config.Errors
	require.ErrorAs(t, err, &errs)
	assert.Equal(t, []string{
		base + `:11: pipelines.up.stages[1].batch.limit: "10 KB" is not a size (want e.g. 512, 10KB, 1MB)`,
		base + `:15: pipelines.ingest.stages[0]: log is a trigger, not a stage (stage types: batch, plugin, policy)`,
		base + `:16: pipelines.ingest.to: storage/clod names nothing: the storage entries are cloud, local`,
		override + `:2: storage.local.durability: must be "sync" or "async", got "maybe"`,
	}, strings.Split(err.Error(), "\n"))
}

// TestValidateFollowsBadgersPlatformRule checks validate refuses, on a
// 32-bit build, a config whose storage is badger, naming the storage and
// the reason, as running it would; on a 64-bit build it is valid. Both
// branches run: `make test` runs this package with GOARCH=386 too.
func TestValidateFollowsBadgersPlatformRule(t *testing.T) {
	base := writeConfig(t, pipelinesConfig)
	_, err := execute(t, "validate", "-c", base)
	if strconv.IntSize == 64 {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	for _, want := range []string{"local", "64-bit", "badger"} {
		assert.Contains(t, err.Error(), want)
	}
}
