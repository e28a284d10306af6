package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/broker"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
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

func badgerOf(t *testing.T, s *StorageConfig) *badger.Config {
	t.Helper()
	require.NotNil(t, s)
	c, ok := s.Config.(*badger.Config)
	require.True(t, ok, "config %T", s.Config)
	return c
}

func TestLoadGood(t *testing.T) {
	testenv.NeedBadger(t) // the configs name badger storages, which 32-bit builds refuse
	good := func(name string) string { return filepath.Join("testdata", "good", name) }
	tests := []struct {
		files []string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{files: []string{"minimal.yaml"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, "dev-1", c.Site)
			assert.Equal(t, abs(t, "testdata/good/schema.json5"), c.Schema)
			assert.Equal(t, abs(t, "testdata/good"), c.Dir)
			assert.Equal(t, DefaultListen, c.API.Listen)
			assert.Empty(t, c.API.Socket)
			assert.True(t, c.API.UI, "the status page is on by default")
			name, s, ok := c.LocalStorage()
			require.True(t, ok)
			assert.Equal(t, "local", name)
			want := badger.NewDefaultConfig()
			want.Path = "./data" // the factory resolves it against Dir
			assert.Equal(t, &want, badgerOf(t, s))
			assert.Equal(t, "badger", s.Factory.Type())
			assert.Equal(t, pipeline.ID{Type: "badger", Name: "local"}, s.ID())
			assert.Equal(t, schema.SideDevice, s.Side)
			assert.Equal(t, "dev-1", s.Site)
			assert.Empty(t, c.Transports)
			assert.Empty(t, c.Pipelines)
		}},
		{files: []string{"full.yaml"}, env: map[string]string{"DATA_DIR": "/var/lib/iotod"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, "demo-device", c.Site)
			assert.Equal(t, abs(t, "testdata/good/schema.json5"), c.Schema)
			b := badgerOf(t, c.Storage["local"])
			assert.Equal(t, "/var/lib/iotod/device", b.Path)
			assert.Equal(t, "async", b.Durability)
			assert.Equal(t, int64(16<<20), b.MemTableSize)
			assert.Equal(t, 30*time.Second, b.SweepInterval)
			assert.Equal(t, int64(8<<20), c.Storage["local"].ReadCache)
			assert.Equal(t, 48*pipeline.Megabyte, c.MemoryLimit)
			assert.Equal(t, badger.NewDefaultConfig().NumMemtables, b.NumMemtables, "defaults kept")
			assert.Equal(t, "[::1]:7401", c.API.Listen)
			assert.Equal(t, abs(t, "testdata/good/run/iotod.sock"), c.API.Socket)
		}},
		{files: []string{"full.yaml"}, env: map[string]string{"SITE": "s9", "DATA_DIR": "/d", "PORT": "7500"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, "s9", c.Site)
			assert.Equal(t, "[::1]:7500", c.API.Listen)
		}},
		{files: []string{"socket-only.yaml"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, "gw.7_a", c.Site)
			assert.Empty(t, c.API.Listen)
			assert.Equal(t, "/run/iotod.sock", c.API.Socket)
			assert.False(t, c.API.UI)
			name, s, ok := c.LocalStorage()
			require.True(t, ok)
			assert.Equal(t, "main", name)
			assert.Equal(t, "/var/lib/iotod", badgerOf(t, s).Path)
		}},
		{files: []string{"escape.yaml"}, env: map[string]string{"EMPTY": "", "DIR": "/x: #y", "PORT": "1"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, "fallback", c.Site)
			assert.Equal(t, "/x: #y", badgerOf(t, c.Storage["local"]).Path, "a value never changes the YAML structure")
			assert.Equal(t, "${literal}", badgerOf(t, c.Storage["other"]).Path)
			assert.Equal(t, "localhost:1", c.API.Listen)
			name, _, ok := c.LocalStorage()
			assert.True(t, ok)
			assert.Equal(t, "local", name)
		}},
		{files: []string{"pipelines.yaml"}, check: checkPipelines},
		{files: []string{"broker.yaml"}, env: map[string]string{"DEV_PASSWORD": "pw1"}, check: func(t *testing.T, c *Config) {
			want := broker.NewDefaultConfig()
			want.Listen = "127.0.0.1:1884"
			want.Anonymous = false
			want.Persistence = abs(t, "testdata/good/data/broker")
			want.TLS = &broker.TLSConfig{CertFile: abs(t, "testdata/good/tls/broker.pem"), KeyFile: "/etc/iotod/broker.key"}
			want.Users = []broker.User{{Username: "dev-1", Password: "pw1", Site: "dev-1"}, {Username: "worker", Password: "s3cret", Role: broker.RoleCloud}}
			assert.Equal(t, &want, c.Broker)
		}},
		{files: []string{"broker-defaults.yaml"}, check: func(t *testing.T, c *Config) {
			want := broker.NewDefaultConfig()
			assert.Equal(t, &want, c.Broker, "an empty broker key asks for the broker with its defaults")
		}},
		{files: []string{"minimal.yaml"}, check: func(t *testing.T, c *Config) {
			assert.Nil(t, c.Broker, "no broker key, no broker")
		}},
		{files: []string{"anchors.yaml"}, check: func(t *testing.T, c *Config) {
			cloud := badgerOf(t, c.Storage["cloud"])
			assert.Equal(t, "./data/cloud", cloud.Path, "an explicit key wins over <<")
			assert.Equal(t, "async", cloud.Durability, "<< brings the anchored keys")
			assert.Equal(t, schema.SideCloud, c.Storage["cloud"].Side)
			assert.Equal(t, "./data/device", badgerOf(t, c.Storage["local"]).Path, "the anchor is left as it was")
			for _, name := range []string{"up", "down"} {
				p := c.Pipelines[name]
				require.Len(t, p.Stages, 2, name)
				assert.Equal(t, 10*time.Millisecond, p.Stages[1].Config.(*batchConfig).Delay, name)
			}
			assert.Equal(t, pipeline.Down, c.Pipelines["down"].Direction)
		}},
		{files: []string{"merge-base.yaml", "merge-override.yaml"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, []string{good("merge-base.yaml"), good("merge-override.yaml")}, c.Files)
			assert.Equal(t, "dev-2", c.Site, "a later value replaces")
			b := badgerOf(t, c.Storage["local"])
			assert.Equal(t, "async", b.Durability, "overridden")
			assert.Equal(t, "./data/device", b.Path, "kept from the base: maps merge deeply")
			assert.Equal(t, int64(16<<20), b.MemTableSize, "kept from the base")
			bus := c.Transports["bus"].Config.(*busConfig)
			assert.Equal(t, &busConfig{Buffer: 16, QoS: 0, URL: "tcp://broker:1883"}, bus)
			up := c.Pipelines["up"]
			require.Len(t, up.Stages, 1, "a later list replaces")
			assert.Equal(t, &batchConfig{Delay: 50 * time.Millisecond, Limit: 64 * pipeline.Kilobyte, Count: 1000}, up.Stages[0].Config,
				"the replacing list's stage starts from its defaults")
			assert.Equal(t, Ref{pipeline.KindStorage, "local"}, up.From, "kept from the base")
			assert.Equal(t, abs(t, "testdata/good/iotod.sock"), c.API.Socket)
			assert.Equal(t, DefaultListen, c.API.Listen)
		}},
		{files: []string{"merge-base.yaml", "merge-override.yaml"}, env: map[string]string{"SITE": "s3"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, "s3", c.Site)
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.files, "+"), func(t *testing.T) {
			paths := make([]string, len(tt.files))
			for i, f := range tt.files {
				paths[i] = good(f)
			}
			c, err := LoadWith(testRegistry(t), envOf(tt.env), paths...)
			require.NoError(t, err)
			assert.Equal(t, paths, c.Files)
			tt.check(t, c)
		})
	}
}

func checkPipelines(t *testing.T, c *Config) {
	require.Len(t, c.Pipelines, 4)
	cloud := c.Storage["cloud"]
	assert.Equal(t, schema.SideCloud, cloud.Side)
	assert.Equal(t, "cloud", cloud.Site)
	assert.Equal(t, "dev-1", c.Storage["local"].Site)
	assert.Equal(t, &busConfig{Buffer: 16, QoS: 2}, c.Transports["bus"].Config)
	assert.Equal(t, pipeline.ID{Type: "bus", Name: "bus"}, c.Transports["bus"].ID())

	up := c.Pipelines["up"]
	assert.Equal(t, "up", up.Name)
	assert.Equal(t, Ref{pipeline.KindStorage, "local"}, up.From)
	assert.Equal(t, Ref{pipeline.KindTransport, "bus"}, up.To)
	assert.Equal(t, "storage/local", up.From.String())
	assert.True(t, up.Sends())
	assert.Equal(t, "local", up.Storage())
	assert.Equal(t, "bus", up.Transport())
	assert.Equal(t, DefaultAckTimeout, up.AckTimeout)
	require.Len(t, up.Stages, 2)
	assert.Equal(t, pipeline.ID{Type: "policy"}, up.Stages[0].ID)
	assert.Equal(t, "policy", up.Stages[0].Factory.Type())
	assert.Equal(t, &policyConfig{ValidateItems: true}, up.Stages[0].Config)
	assert.Equal(t, &batchConfig{Delay: 50 * time.Millisecond, Limit: 10 * pipeline.Kilobyte, Count: 500}, up.Stages[1].Config)

	ingest := c.Pipelines["ingest"]
	assert.False(t, ingest.Sends())
	assert.Equal(t, "cloud", ingest.Storage())
	require.Len(t, ingest.Stages, 1, "a bare type is a stage with its defaults")
	assert.Equal(t, &policyConfig{ValidateItems: true}, ingest.Stages[0].Config)
	require.Len(t, ingest.Triggers, 2)
	assert.Equal(t, &logConfig{Level: "debug", Models: []string{"Status"}}, ingest.Triggers[0].Config)
	assert.Equal(t, pipeline.ID{Type: "log", Name: "audit"}, ingest.Triggers[1].ID)
	assert.Equal(t, &logConfig{Level: "info"}, ingest.Triggers[1].Config)

	fanout := c.Pipelines["fanout"]
	assert.Equal(t, pipeline.ID{Type: "policy", Name: "strict"}, fanout.Stages[0].ID)
	assert.Equal(t, 512*pipeline.Byte, fanout.Stages[1].Config.(*batchConfig).Limit)
	assert.Equal(t, 2*time.Second, fanout.AckTimeout)

	// From a device or into the cloud is up; the rest is down. A pipeline
	// runs on its storage's side.
	for name, want := range map[string][2]string{
		"up": {"up", "device"}, "ingest": {"up", "cloud"}, "fanout": {"down", "cloud"}, "down": {"down", "device"},
	} {
		assert.Equal(t, pipeline.Direction(want[0]), c.Pipelines[name].Direction, name)
		assert.Equal(t, schema.Side(want[1]), c.Pipelines[name].Side, name)
	}
}

// badCase is one file of testdata/bad: the faults it must give, each a
// substring of one error in order ("# want: TEXT", the file's path before
// TEXT when TEXT starts with ':'), the environment ("# env: NAME=VALUE")
// and files merged over it ("# with: PATH").
type badCase struct {
	want  []string
	env   map[string]string
	files []string
}

func readBadCase(t *testing.T, path string) badCase {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	c := badCase{env: map[string]string{}, files: []string{path}}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "# want: "):
			w := strings.TrimPrefix(line, "# want: ")
			if strings.HasPrefix(w, ":") {
				w = path + w
			}
			c.want = append(c.want, w)
		case strings.HasPrefix(line, "# env: "):
			k, v, _ := strings.Cut(strings.TrimPrefix(line, "# env: "), "=")
			c.env[k] = v
		case strings.HasPrefix(line, "# with: "):
			c.files = append(c.files, filepath.Join(filepath.Dir(path), strings.TrimPrefix(line, "# with: ")))
		}
	}
	require.NotEmpty(t, c.want, `%s has no "# want:" line`, path)
	return c
}

func TestLoadBad(t *testing.T) {
	testenv.NeedBadger(t) // the configs name badger storages, which 32-bit builds refuse
	files, err := filepath.Glob("testdata/bad/*.yaml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 20)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			tc := readBadCase(t, path)
			_, err := LoadWith(testRegistry(t), envOf(tc.env), tc.files...)
			require.Error(t, err)
			assert.ErrorIs(t, err, pipeline.ErrInvalid)
			var errs Errors
			require.ErrorAs(t, err, &errs)
			require.Len(t, errs, len(tc.want), "errors:\n%v", err)
			for i, want := range tc.want {
				assert.Contains(t, errs[i].Error(), want)
				assert.True(t, slices.ContainsFunc(tc.files, func(f string) bool {
					return strings.HasPrefix(errs[i].Error(), f+":")
				}), "%q names no file", errs[i])
			}
		})
	}
}

func TestLoadArgs(t *testing.T) {
	reg := testRegistry(t)
	_, err := Load(reg, filepath.Join(t.TempDir(), "nope.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	var errs Errors
	assert.False(t, errors.As(err, &errs), "an unreadable file is not a config error")

	_, err = Load(reg)
	assert.ErrorContains(t, err, "no file")
	_, err = Load(nil, "testdata/good/minimal.yaml")
	assert.ErrorContains(t, err, "no plugin registry")
}

// TestLoadAliasBomb checks that nested aliases cannot blow a file up.
func TestLoadAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a: &a [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 'b'; i <= 'j'; i++ {
		prev := string(i - 1)
		b.WriteString(string(i) + ": &" + string(i) + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
			", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n")
	}
	path := filepath.Join(t.TempDir(), "bomb.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	_, err := Load(testRegistry(t), path)
	assert.ErrorContains(t, err, "expands to more than")
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
