package exec

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
)

// decode reads a YAML config over the defaults, unknown keys rejected.
func decode(t *testing.T, text string) *Config {
	t.Helper()
	cfg := NewFactory().NewDefaultConfig().(*Config)
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(cfg))
	return cfg
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error; none: valid
	}{
		{"defaults and a command", `command: [/bin/true]`, nil},
		{"every key", `
command: [hooks/notify.sh, --fast]
env: {TOKEN: abc}
dir: hooks
timeout: 2s
max_concurrency: 1
per_change: true
models: [Reading]
ops: [create, remove]
origin: remote`, nil},
		{"no command", `timeout: 1s`, []string{"command: must be set"}},
		{"empty program", `command: [""]`, []string{"command: the program (the first item) is empty"}},
		{"reserved env", `{command: [x], env: {IOTOD_COUNT: "1"}}`, []string{"env.IOTOD_COUNT: is set by iotod"}},
		{"bad env name", `{command: [x], env: {"A=B": "1"}}`, []string{`env: "A=B" is not a variable name`}},
		{"bad numbers", `{command: [x], timeout: 0s, max_concurrency: 0}`, []string{"timeout: must be positive", "max_concurrency: must be at least 1"}},
		{"filter keys", `{command: [x], ops: [delete], origin: nowhere}`, []string{`ops[0]: "delete"`, `origin: "nowhere"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decode(t, tc.yaml).Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, pipeline.ErrInvalid)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	f := NewFactory()
	require.Equal(t, pipeline.KindTrigger, f.Kind())
	require.Equal(t, "exec", f.Type())
	cfg := f.NewDefaultConfig().(*Config)
	require.Equal(t, 10*time.Second, cfg.Timeout)
	require.Equal(t, 4, cfg.MaxConcurrency)
	require.Equal(t, "both", cfg.Filter.Origin)
	require.False(t, cfg.PerChange)
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "hooks"), 0o700))
	script := filepath.Join(dir, "hooks", "run.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n"), 0o700))
	set := pipeline.Settings{Site: site, Dir: dir}
	create := func(text string) (*Trigger, error) {
		tr, err := NewFactory().Create(t.Context(), set, decode(t, text))
		if err != nil {
			return nil, err
		}
		return tr.(*Trigger), nil
	}

	tr, err := create(`{command: [hooks/run.sh, a], dir: hooks}`)
	require.NoError(t, err)
	require.Equal(t, []string{script, "a"}, tr.argv, "a relative program is from the config's folder")
	require.Equal(t, filepath.Join(dir, "hooks"), tr.dir)
	require.Equal(t, 4, cap(tr.slots))

	tr, err = create(`{command: [sh, -c, "exit 0"]}`)
	require.NoError(t, err)
	require.True(t, filepath.IsAbs(tr.argv[0]), "a bare name is looked up in PATH: %s", tr.argv[0])
	require.Equal(t, dir, tr.dir)

	_, err = create(`{command: [hooks/missing.sh]}`)
	require.ErrorIs(t, err, pipeline.ErrInvalid)
	require.ErrorContains(t, err, "command: ")
	_, err = create(`{command: [sh], dir: nowhere}`)
	require.ErrorContains(t, err, "dir: "+filepath.Join(dir, "nowhere")+" is not a directory")
	_, err = create(`{command: [no-such-program-iotod]}`)
	require.ErrorContains(t, err, "command: ")
}
