package main

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
)

// execute runs the iotod command line in-process.
func execute(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err = root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestPluginsList(t *testing.T) {
	out, err := execute(t, "plugins", "list")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Regexp(t, `^KIND +TYPE +DESCRIPTION$`, lines[0])
	reg, err := components()
	require.NoError(t, err)
	fs := reg.Factories()
	require.Len(t, lines, len(fs)+1)
	for i, f := range fs {
		assert.Regexp(t, `^`+string(f.Kind())+` +`+f.Type()+` +`+regexpQuote(f.Description())+`$`, lines[i+1])
	}
	for _, want := range []string{"storage/badger", "transport/inproc", "stage/policy", "stage/batch", "trigger/log"} {
		kind, typ, _ := strings.Cut(want, "/")
		_, err := reg.Lookup(pipeline.Kind(kind), typ)
		assert.NoError(t, err, "built-in %s", want)
	}
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestBuiltinConfigs checks what every built-in plugin's config must
// have: a pointer to a struct, every key documented by a desc tag, a
// default that passes Validate (but for required keys) and that survives
// being written as YAML and read back strictly, and a describe output
// naming each key.
func TestBuiltinConfigs(t *testing.T) {
	testenv.NeedBadger(t) // the configs name badger storages, which 32-bit builds refuse
	reg, err := components()
	require.NoError(t, err)
	for _, f := range reg.Factories() {
		t.Run(string(f.Kind())+"/"+f.Type(), func(t *testing.T) {
			assert.NotEmpty(t, f.Description())
			def := f.NewDefaultConfig()
			rt := reflect.TypeOf(def)
			require.Equal(t, reflect.Pointer, rt.Kind(), "the default config is a pointer")
			require.Equal(t, reflect.Struct, rt.Elem().Kind())
			assert.NotSame(t, def, f.NewDefaultConfig(), "each call returns a new config")

			fields := configFields(def)
			for _, fd := range fields {
				assert.NotEmpty(t, fd.Desc, "key %s has no desc tag", fd.Name)
			}
			data, err := yaml.Marshal(def)
			require.NoError(t, err)
			back := reflect.New(rt.Elem()).Interface()
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			if len(fields) > 0 {
				require.NoError(t, dec.Decode(back), "%s", data)
			}
			again, err := yaml.Marshal(back)
			require.NoError(t, err)
			assert.Equal(t, string(data), string(again), "the default config, written, read back and written again")
			assert.NoError(t, checkedDefault(f, def), "the default config passes Validate")

			out, err := execute(t, "plugins", "describe", string(f.Kind())+"/"+f.Type())
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(out, string(f.Kind())+"/"+f.Type()+": "+f.Description()+"\n"), out)
			for _, fd := range fields {
				assert.Regexp(t, `(?m)^`+regexpQuote(fd.Name)+` +`+regexpQuote(fd.Type)+` `, out)
			}
		})
	}
}

// checkedDefault validates def, a plugin's default config; a default may
// lack the one key only the user can give: a storage's path, the exec
// trigger's command, the webhook trigger's url, the publish trigger's
// transport, an external plugin's path.
func checkedDefault(f pipeline.Factory, def pipeline.Config) error {
	err := def.Validate()
	required := map[string]string{"trigger/exec": "command", "trigger/webhook": "url", "trigger/publish": "transport", "storage/postgres": "url"}[string(f.Kind())+"/"+f.Type()]
	if required == "" && (f.Kind() == pipeline.KindStorage || f.Type() == "plugin") {
		required = "path"
	}
	if err == nil || required == "" {
		return err
	}
	text := strings.TrimPrefix(err.Error(), pipeline.ErrInvalid.Error()+": ")
	if strings.HasPrefix(text, required+": ") && !strings.Contains(text, "\n") {
		return nil
	}
	return err
}

// docFactory is a plugin whose config has every shape describe handles.
type docFactory struct{}

type docConfig struct {
	Delay   time.Duration     `yaml:"delay" desc:"how long"`
	Limit   pipeline.ByteSize `yaml:"limit" desc:"how big"`
	Tags    []string          `yaml:"tags" desc:"labels"`
	TLS     docTLS            `yaml:"tls"`
	Inline  docInline         `yaml:",inline"`
	Skipped string            `yaml:"-"`

	_ struct{}
}

type docTLS struct {
	CA       string `yaml:"ca" desc:"CA file"`
	Insecure bool   `yaml:"insecure" desc:"skip checks"`
}

type docInline struct {
	Level int `yaml:"level" desc:"verbosity"`
}

func (*docConfig) Validate() error { return nil }

func (docFactory) Kind() pipeline.Kind { return pipeline.KindTransport }
func (docFactory) Type() string        { return "doc" }
func (docFactory) Description() string { return "a plugin to document" }
func (docFactory) NewDefaultConfig() pipeline.Config {
	return &docConfig{Delay: 1500 * time.Millisecond, Limit: 10 * pipeline.Kilobyte, Tags: []string{"a", "b"}, Inline: docInline{Level: 2}}
}
func (docFactory) Create(context.Context, pipeline.Settings, pipeline.Config) (any, error) {
	return nil, errors.New("not made")
}

func TestDescribePlugin(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, describePlugin(&b, docFactory{}))
	assert.Equal(t, `transport/doc: a plugin to document

KEY           TYPE            DEFAULT  DESCRIPTION
delay         duration        1.5s     how long
limit         size            10KB     how big
tags          list of string  [a, b]   labels
tls.ca        string          ""       CA file
tls.insecure  boolean         false    skip checks
level         integer         2        verbosity

Sample (every key at its default):

transports:
  NAME:
    type: doc
    delay: 1.5s
    limit: 10KB
    tags:
      - a
      - b
    tls:
      ca: ""
      insecure: false
    level: 2
`, b.String())
}

func TestDescribeErrors(t *testing.T) {
	_, err := execute(t, "plugins", "describe", "stage/nope")
	assert.ErrorContains(t, err, `unknown stage type "nope" (known: batch, plugin, policy)`)
	_, err = execute(t, "plugins", "describe", "batch")
	assert.ErrorContains(t, err, `"batch" is not KIND/TYPE`)
	_, err = execute(t, "plugins", "describe")
	assert.Error(t, err)
}
