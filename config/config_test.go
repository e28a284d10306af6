package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
)

// envOf returns a Lookup over vars.
func envOf(vars map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func abs(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.Abs(path)
	require.NoError(t, err)
	return p
}

func TestLoadGood(t *testing.T) {
	tests := []struct {
		file  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{file: "minimal.yaml", check: func(t *testing.T, c *Config) {
			assert.Equal(t, "dev-1", c.Site)
			assert.Equal(t, abs(t, "testdata/good/schema.json5"), c.Schema)
			assert.Equal(t, DefaultListen, c.API.Listen)
			assert.Empty(t, c.API.Socket)
			name, s, ok := c.LocalStorage()
			require.True(t, ok)
			assert.Equal(t, "local", name)
			want := badger.NewDefaultConfig()
			want.Path = abs(t, "testdata/good/data")
			assert.Equal(t, &StorageConfig{Type: "badger", Badger: want}, s)
		}},
		{file: "full.yaml", env: map[string]string{"DATA_DIR": "/var/lib/iotod"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, "demo-device", c.Site)
			assert.Equal(t, "/etc/iotod/schema.json5", c.Schema)
			assert.Equal(t, "/var/lib/iotod/device", c.Storage["local"].Badger.Path)
			assert.Equal(t, "async", c.Storage["local"].Badger.Durability)
			assert.Equal(t, int64(16<<20), c.Storage["local"].Badger.MemTableSize)
			assert.Equal(t, 30*time.Second, c.Storage["local"].Badger.SweepInterval)
			assert.Equal(t, badger.NewDefaultConfig().NumMemtables, c.Storage["local"].Badger.NumMemtables, "defaults kept")
			assert.Equal(t, "[::1]:7401", c.API.Listen)
			assert.Equal(t, abs(t, "testdata/good/run/iotod.sock"), c.API.Socket)
		}},
		{file: "full.yaml", env: map[string]string{"SITE": "s9", "DATA_DIR": "/d", "PORT": "7500"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, "s9", c.Site)
			assert.Equal(t, "[::1]:7500", c.API.Listen)
		}},
		{file: "socket-only.yaml", check: func(t *testing.T, c *Config) {
			assert.Equal(t, "gw.7_a", c.Site)
			assert.Equal(t, abs(t, "testdata/schema.yaml"), c.Schema)
			assert.Empty(t, c.API.Listen)
			assert.Equal(t, "/run/iotod.sock", c.API.Socket)
			name, s, ok := c.LocalStorage()
			require.True(t, ok)
			assert.Equal(t, "main", name)
			assert.Equal(t, "/var/lib/iotod", s.Badger.Path)
		}},
		{file: "escape.yaml", env: map[string]string{"EMPTY": "", "DIR": "/x: #y", "PORT": "1"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, "fallback", c.Site)
			assert.Equal(t, abs(t, "testdata/good/${literal}.json5"), c.Schema)
			assert.Equal(t, "/x: #y", c.Storage["local"].Badger.Path, "a value never changes the YAML structure")
			assert.Equal(t, "localhost:1", c.API.Listen)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "good", tt.file)
			c, err := LoadWith(path, envOf(tt.env))
			require.NoError(t, err)
			assert.Equal(t, path, c.File)
			tt.check(t, c)
		})
	}
}

func TestLoadBad(t *testing.T) {
	tests := []struct {
		file string
		env  map[string]string
		// want lists every expected error, each a substring of one line, in
		// order; the file's path prefixes each.
		want []string
	}{
		{file: "durability.yaml", want: []string{
			`:5: storage.local.durability: "fast" is not one of sync, async`}},
		{file: "badger.yaml", want: []string{
			`:7: storage.local.mem_table_size: must be at least 1048576 (1 MiB), got 1000`,
			`:8: storage.local.num_memtables: "two" is not an integer`,
			`:9: storage.local.sweep_interval: "10" is not a duration (such as 500ms, 5s or 1m)`,
			`:10: storage.local.value_log_file_size: must be between`,
			`:11: storage.local.block_cache_size: variable NO_CACHE_SIZE is not set`}},
		{file: "unknown-keys.yaml", want: []string{
			`:7: storage.local.durabilty: unknown key (known keys: block_cache_size, durability, index_cache_size, mem_table_size, num_memtables, path, sweep_interval, type, value_log_file_size)`,
			`:9: api.port: unknown key (known keys: listen, socket)`,
			`:10: transports: unknown key (known keys: api, schema, site, storage)`}},
		{file: "undefined-var.yaml", env: map[string]string{"DATA": "/d"}, want: []string{
			`:2: schema: variable SCHEMA_FILE is not set (write ${SCHEMA_FILE:-default} to give a default)`,
			`:4: storage.local.path: variable MISSING is not set`}},
		{file: "missing.yaml", want: []string{
			`:2: site: is required`,
			`:2: schema: is required`,
			`:2: storage: is required`}},
		{file: "syntax.yaml", want: []string{`:3: did not find expected ',' or '}'`}},
		{file: "kinds.yaml", want: []string{
			`:1: site: want a single value, got a mapping`,
			`:3: storage: want a mapping (key: value lines), got a list`,
			`:4: api: want a mapping (key: value lines), got a single value`}},
		{file: "listen.yaml", want: []string{
			`:6: api.listen: "0.0.0.0:7400" is not a loopback address`}},
		{file: "api.yaml", want: []string{
			`:6: api.listen: "localhost:99999" has a bad port`,
			`:7: api.socket: is 112 bytes long; a unix socket path may have at most 104`}},
		{file: "storages.yaml", want: []string{
			`:1: site: "dev/1" must be 1 to 128 letters`,
			`:2: schema: is required`,
			`:3: storage: with several storages, the device's one must be named local`,
			`:4: storage.Main: the name must match`,
			`:5: storage.backup.type: "sqlite" is not one of badger`,
			`:5: storage.backup.path: is required`}},
		{file: "duplicate.yaml", want: []string{`:3: site: duplicate key (first set on line 1)`}},
		{file: "empty.yaml", want: []string{`empty.yaml: the file is empty`}},
		{file: "two-docs.yaml", want: []string{`:2: the file must hold one YAML document`}},
		{file: "bad-vars.yaml", want: []string{
			`:1: site: bad variable reference ${1SITE}: want ${NAME} or ${NAME:-default}`,
			`:2: schema: variable reference "${SCHEMA" has no closing '}'`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			_, err := LoadWith(path, envOf(tt.env))
			require.Error(t, err)
			assert.ErrorIs(t, err, pipeline.ErrInvalid)
			var errs Errors
			require.ErrorAs(t, err, &errs)
			require.Len(t, errs, len(tt.want), "errors: %v", err)
			for i, want := range tt.want {
				assert.Contains(t, errs[i].Error(), want)
				assert.Regexp(t, `^`+path+`:`, errs[i].Error())
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	var errs Errors
	assert.False(t, errors.As(err, &errs), "an unreadable file is not a config error")
}

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{"A": "1", "E": ""})
	tests := []struct{ in, want, err string }{
		{in: "plain $A and $", want: "plain $A and $"},
		{in: "${A}${A}-${A:-x}", want: "11-1"},
		{in: "${E}|${E:-d}|${U:-}|${U:-a:-b}", want: "|d||a:-b"},
		{in: "$${A} $$${A}", want: "${A} $${A}"},
		{in: "${U}", err: "variable U is not set"},
		{in: "${}", err: "bad variable reference ${}"},
		{in: "${A", err: "no closing"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, env)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}
