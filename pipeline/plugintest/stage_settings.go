package plugintest

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// stageSchemaSource is the schema the stage suites run against: one model
// per process rule.
const stageSchemaSource = `{
    format: 'onetable:1.1.0',
    version: '0.0.1',
    indexes: { primary: { hash: 'pk', sort: 'sk' } },
    params: { timestamps: true },
    models: {
        Reading: {
            pk: { type: 'string', value: 'reading#${deviceId}' },
            sk: { type: 'string', value: 'reading#${seq}' },
            deviceId: { type: 'string', required: true },
            seq: { type: 'number', required: true },
            temp: { type: 'number' },
        },
        Command: {
            pk: { type: 'string', value: 'command#${id}' },
            sk: { type: 'string', value: 'command#' },
            id: { type: 'string', required: true },
            cmd: { type: 'string', enum: ['reboot', 'update'] },
        },
        Store: {
            pk: { type: 'string', value: 'store#${key}' },
            sk: { type: 'string', value: 'store#' },
            key: { type: 'string', required: true },
            value: { type: 'string' },
        },
        SyncState: {
            pk: { type: 'string', value: 'syncstate#' },
            sk: { type: 'string', value: 'syncstate#' },
            cursor: { type: 'number' },
        },
        Broadcast: {
            pk: { type: 'string', value: 'broadcast#${id}' },
            sk: { type: 'string', value: 'broadcast#' },
            id: { type: 'string', required: true },
        },
        Note: {
            pk: { type: 'string', value: 'note#${id}' },
            sk: { type: 'string', value: 'note#' },
            id: { type: 'string', required: true },
        },
    },
    process: {
        Reading: { sync: 'up' },
        Command: { sync: 'down' },
        Store: { sync: 'both' },
        SyncState: { enable: 'device', sync: 'up' },
        Broadcast: { enable: 'cloud', sync: 'down' },
    },
}`

// StageSchema returns a fresh copy of the schema the stage suites use:
// Reading syncs up, Command down, Store both ways, SyncState lives on the
// device only, Broadcast in the cloud only, and Note does not sync.
func StageSchema(t testing.TB) *schema.Schema {
	t.Helper()
	s, err := schema.ParseBytes([]byte(stageSchemaSource), "json5", "plugintest stage schema")
	if err != nil {
		t.Fatalf("plugintest: stage schema: %v", err)
	}
	return s
}

// NewStageSettings returns settings for a component of f in tests: a
// discarding logger, a private metrics registry, StageSchema, site
// "plugintest" and a temporary folder.
func NewStageSettings(t testing.TB, f pipeline.Factory) pipeline.Settings {
	t.Helper()
	return pipeline.Settings{
		ID:      pipeline.ID{Type: f.Type(), Name: "plugintest"},
		Kind:    f.Kind(),
		Site:    "plugintest",
		Logger:  slog.New(slog.DiscardHandler),
		Metrics: prometheus.NewRegistry(),
		Schema:  StageSchema(t),
		Dir:     t.TempDir(),
	}
}

// createStage makes a component of f with cfg (nil: the default config)
// and checks it has type T. A non-nil sc replaces StageSchema.
func createStage[T any](t *testing.T, f pipeline.Factory, cfg pipeline.Config, sc ...*schema.Schema) T {
	t.Helper()
	if cfg == nil {
		cfg = f.NewDefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config does not validate: %v", err)
	}
	set := NewStageSettings(t, f)
	if len(sc) > 0 && sc[0] != nil {
		set.Schema = sc[0]
	}
	c, err := f.Create(t.Context(), set, cfg)
	if err != nil {
		t.Fatalf("create %s/%s: %v", f.Kind(), f.Type(), err)
	}
	out, ok := c.(T)
	if !ok {
		var zero T
		t.Fatalf("create %s/%s returned %T, which is not a %T", f.Kind(), f.Type(), c, &zero)
	}
	return out
}

// bindStage binds c to a test pipeline running in dir, if it is a
// StageBinder.
func bindStage(t *testing.T, c any, dir pipeline.Direction) {
	t.Helper()
	b, ok := c.(pipeline.StageBinder)
	if !ok {
		return
	}
	side := "device"
	if dir == pipeline.Down {
		side = "cloud"
	}
	if err := b.Bind(pipeline.StageSettings{Pipeline: "plugintest-" + string(dir), Direction: dir, Side: side}); err != nil {
		t.Fatalf("bind to a %s pipeline: %v", dir, err)
	}
}

// testFactory checks what every stage factory must do.
func testFactory(t *testing.T, f pipeline.Factory) {
	if f.Kind() != pipeline.KindStage {
		t.Errorf("Kind() = %q, want %q", f.Kind(), pipeline.KindStage)
	}
	if _, err := pipeline.ParseID(f.Type()); err != nil || f.Type() == "" {
		t.Errorf("Type() = %q is not a valid component type: %v", f.Type(), err)
	}
	if f.Description() == "" {
		t.Error("Description() is empty")
	}
	cfg := f.NewDefaultConfig()
	if cfg == nil {
		t.Fatal("NewDefaultConfig() returned nil")
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the default config does not validate: %v", err)
	}
	if cfg == f.NewDefaultConfig() {
		t.Error("NewDefaultConfig() returns the same config twice; each call must return a new one")
	}
	if _, err := f.Create(t.Context(), NewStageSettings(t, f), wrongConfig{}); err == nil {
		t.Error("Create with a config of another type: no error")
	}
}

// wrongConfig is a config no factory expects.
type wrongConfig struct{}

func (wrongConfig) Validate() error { return nil }

// stageChange builds a change of the stage schema.
func stageChange(seq uint64, model string, op pipeline.Op, pk, sk, item string) pipeline.Change {
	c := pipeline.Change{
		Seq: seq, Model: model, Op: op, Key: pipeline.Key{PK: pk, SK: sk},
		Version: pipeline.Version{Wall: int64(1_700_000_000_000 + seq), Origin: "plugintest"},
		Origin:  "plugintest", Time: int64(1_700_000_000_000 + seq),
	}
	if item != "" {
		c.Item = []byte(item)
	}
	return c
}

// stageMixedChanges returns changes of every model and op, valid and not,
// with Seqs 1..n.
func stageMixedChanges() []pipeline.Change {
	var out []pipeline.Change
	add := func(model string, op pipeline.Op, pk, sk, item string) {
		out = append(out, stageChange(uint64(len(out)+1), model, op, pk, sk, item))
	}
	for i := range 3 {
		id := fmt.Sprint(i)
		add("Reading", pipeline.OpCreate, "reading#d1", "reading#"+id,
			fmt.Sprintf(`{"_type":"Reading","pk":"reading#d1","sk":"reading#%s","deviceId":"d1","seq":%s,"temp":21.5}`, id, id))
		add("Command", pipeline.OpUpsert, "command#"+id, "command#", fmt.Sprintf(`{"_type":"Command","id":%q,"cmd":"reboot"}`, id))
		add("Store", pipeline.OpUpdate, "store#"+id, "store#", fmt.Sprintf(`{"_type":"Store","key":%q,"value":"v"}`, id))
		add("SyncState", pipeline.OpUpsert, "syncstate#", "syncstate#", `{"_type":"SyncState","cursor":1}`)
		add("Broadcast", pipeline.OpCreate, "broadcast#"+id, "broadcast#", fmt.Sprintf(`{"_type":"Broadcast","id":%q}`, id))
		add("Note", pipeline.OpCreate, "note#"+id, "note#", fmt.Sprintf(`{"_type":"Note","id":%q}`, id))
		add("Store", pipeline.OpRemove, "store#x"+id, "store#", "")
		add("Reading", pipeline.OpRemove, "reading#d1", "reading#x"+id, "")
	}
	add("Store", pipeline.OpCreate, "store#bad", "store#", `{"key":"bad","value":42}`)
	add("Reading", pipeline.OpCreate, "reading#d2", "reading#1", `{"deviceId":"d2"}`)
	add("Store", pipeline.OpCreate, "store#broken", "store#", `{"key":`)
	add("Nobody", pipeline.OpCreate, "nobody#1", "nobody#", `{"id":"1"}`)
	add("Store", pipeline.OpUpsert, "store#last", "store#", `{"_type":"Store","key":"last"}`)
	return out
}
