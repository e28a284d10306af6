package policy

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

func TestConfigDecodeAndValidate(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want Config
		err  string
	}{
		{yaml: "{}", want: Config{ValidateItems: true}},
		{yaml: "{direction: up}", want: Config{Direction: pipeline.Up, ValidateItems: true}},
		{yaml: "{direction: down, validate: false}", want: Config{Direction: pipeline.Down}},
		{yaml: "{direction: sideways}", err: `direction: "sideways" is not up or down`},
		{yaml: "{validate: maybe}", err: "cannot unmarshal"},
		{yaml: "{strict: true}", err: "field strict not found"},
	} {
		cfg := NewDefaultConfig()
		dec := yaml.NewDecoder(strings.NewReader(tc.yaml))
		dec.KnownFields(true)
		err := dec.Decode(cfg)
		if err == nil {
			err = cfg.Validate()
		}
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case cfg.Direction != tc.want.Direction || cfg.ValidateItems != tc.want.ValidateItems:
			t.Errorf("%s: got %+v, want %+v", tc.yaml, *cfg, tc.want)
		}
	}
}

func TestBind(t *testing.T) {
	set := plugintest.NewStageSettings(t, NewFactory())
	for _, tc := range []struct {
		cfg, pipe pipeline.Direction
		err       string
	}{
		{"", pipeline.Up, ""},
		{"", pipeline.Down, ""},
		{pipeline.Up, pipeline.Up, ""},
		{pipeline.Up, pipeline.Down, `direction is up but pipeline "p" runs down`},
		{pipeline.Down, pipeline.Up, `direction is down but pipeline "p" runs up`},
		{"", "", `pipeline "p" has direction "", want up or down`},
	} {
		s := New(Config{Direction: tc.cfg, ValidateItems: true}, set)
		err := s.Bind(pipeline.StageSettings{Pipeline: "p", Direction: tc.pipe, Side: "device"})
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("config %q, pipeline %q: Bind error %v, want %q", tc.cfg, tc.pipe, err, tc.err)
		}
		if err != nil && !errors.Is(err, pipeline.ErrInvalid) {
			t.Errorf("Bind error %v does not wrap ErrInvalid", err)
		}
	}
}

func TestCreateNeedsASchema(t *testing.T) {
	set := plugintest.NewStageSettings(t, NewFactory())
	set.Schema = nil
	_, err := NewFactory().Create(t.Context(), set, NewDefaultConfig())
	if err == nil || !strings.Contains(err.Error(), "needs a schema") {
		t.Fatalf("Create without a schema: %v", err)
	}
}

func TestProcessUnbound(t *testing.T) {
	set := plugintest.NewStageSettings(t, NewFactory())
	b := &pipeline.Batch{ID: "b", Changes: []pipeline.Change{{Seq: 1, Model: "Store", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "store#a", SK: "store#"}}}}
	if _, err := New(*NewDefaultConfig(), set).Process(t.Context(), b); err == nil || !pipeline.IsPermanent(err) {
		t.Errorf("Process before Bind without a direction: %v, want a permanent error", err)
	}
	out, err := New(Config{Direction: pipeline.Up}, set).Process(t.Context(), b)
	if err != nil || len(out.Changes) != 1 {
		t.Errorf("Process before Bind with direction up = %+v, %v; want the remove passed", out, err)
	}
}

func TestValidateOff(t *testing.T) {
	set := plugintest.NewStageSettings(t, NewFactory())
	s := New(Config{Direction: pipeline.Up}, set)
	chg := func(seq uint64, item string) pipeline.Change {
		return pipeline.Change{Seq: seq, Model: "Store", Op: pipeline.OpUpsert, Key: pipeline.Key{PK: "store#" + item, SK: "store#"}, Item: []byte(item)}
	}
	b := &pipeline.Batch{ID: "b", Changes: []pipeline.Change{chg(1, `{"key":1,"colour":"red"}`), chg(2, `{"key":`), chg(3, `{}`)}}
	out, err := s.Process(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Changes) != 2 || out.Changes[0].Seq != 1 || out.Changes[1].Seq != 3 {
		t.Errorf("validate off: passed %+v, want seqs 1 and 3 (invalid but well-formed items pass)", out.Changes)
	}
	if len(out.Rejected) != 1 || out.Rejected[0].Seq != 2 || !strings.Contains(out.Rejected[0].Reason, "malformed item") {
		t.Errorf("validate off: rejects %+v, want seq 2 as malformed", out.Rejected)
	}
}

func TestProcessDoesNotTouchTheInputChanges(t *testing.T) {
	set := plugintest.NewStageSettings(t, NewFactory())
	s := New(Config{Direction: pipeline.Up, ValidateItems: true}, set)
	in := []pipeline.Change{
		{Seq: 1, Model: "Store", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "store#a", SK: "store#"}},
		{Seq: 2, Model: "Command", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "command#a", SK: "command#"}},
		{Seq: 3, Model: "Store", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "store#b", SK: "store#"}},
	}
	orig := append([]pipeline.Change(nil), in...)
	out, err := s.Process(t.Context(), &pipeline.Batch{ID: "b", Changes: in})
	if err != nil || len(out.Changes) != 2 || len(out.Rejected) != 1 {
		t.Fatalf("Process = %+v, %v", out, err)
	}
	for i := range in {
		if in[i].Seq != orig[i].Seq {
			t.Fatalf("Process rewrote the caller's change array: %+v", in)
		}
	}
}

// On a receiving pipeline the store validates items as it applies them,
// so the stage checks only the rules and that items are JSON; on a sending
// one it validates them itself.
func TestReceivingLeavesItemChecksToTheStore(t *testing.T) {
	chg := func(seq uint64, item string) pipeline.Change {
		return pipeline.Change{Seq: seq, Model: "Store", Op: pipeline.OpUpsert, Key: pipeline.Key{PK: "store#" + item, SK: "store#"}, Item: []byte(item)}
	}
	for _, receiving := range []bool{false, true} {
		set := plugintest.NewStageSettings(t, NewFactory())
		s := New(*NewDefaultConfig(), set)
		if err := s.Bind(pipeline.StageSettings{Pipeline: "p", Direction: pipeline.Up, Side: "cloud", Receiving: receiving}); err != nil {
			t.Fatal(err)
		}
		b := &pipeline.Batch{ID: "b", Changes: []pipeline.Change{chg(1, `{"key":1,"colour":"red"}`), chg(2, `{"key":`)}}
		out, err := s.Process(t.Context(), b)
		if err != nil {
			t.Fatal(err)
		}
		wantPassed := 0
		if receiving {
			wantPassed = 1 // the schema-invalid item goes on to the store, which refuses it
		}
		if len(out.Changes) != wantPassed || len(out.Rejected) != 2-wantPassed {
			t.Errorf("receiving=%v: passed %d, rejected %d; want %d passed", receiving, len(out.Changes), len(out.Rejected), wantPassed)
		}
	}
}
