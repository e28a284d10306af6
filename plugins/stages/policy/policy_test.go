package policy

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
	"github.com/iotod/iotod/schema"
)

func TestConformance(t *testing.T) {
	plugintest.TestStage(t, NewFactory(), nil, tableCases(t)...)
}

// tableRow is one change of testdata/changes.yaml and its fate each way.
type tableRow struct {
	Name   string `yaml:"name"`
	Change struct {
		Model string         `yaml:"model"`
		Op    pipeline.Op    `yaml:"op"`
		PK    string         `yaml:"pk"`
		SK    string         `yaml:"sk"`
		Item  map[string]any `yaml:"item"`
		Raw   string         `yaml:"raw"`
	} `yaml:"change"`
	Up   string `yaml:"up"`
	Down string `yaml:"down"`
}

// tableCases turns testdata/changes.yaml into one case per direction, each
// change with Seq = its row number.
func tableCases(t *testing.T) []plugintest.StageCase {
	t.Helper()
	sc, err := schema.Load("testdata/schema.json5")
	if err != nil {
		t.Fatalf("load schema: %v", err)
	}
	data, err := os.ReadFile("testdata/changes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rows []tableRow
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("testdata/changes.yaml: %v", err)
	}
	if len(rows) < 10 {
		t.Fatalf("testdata/changes.yaml: only %d rows", len(rows))
	}
	up := plugintest.StageCase{Name: "table/up", Direction: pipeline.Up, Schema: sc, Pass: []uint64{}, Reasons: map[uint64]string{}}
	down := plugintest.StageCase{Name: "table/down", Direction: pipeline.Down, Schema: sc, Pass: []uint64{}, Reasons: map[uint64]string{}}
	for i, r := range rows {
		seq := uint64(i + 1)
		if r.Up == "" || r.Down == "" {
			t.Fatalf("row %q: up and down are both required", r.Name)
		}
		c := pipeline.Change{Seq: seq, Model: r.Change.Model, Op: r.Change.Op,
			Key: pipeline.Key{PK: r.Change.PK, SK: r.Change.SK}, Origin: "test"}
		switch {
		case r.Change.Raw != "":
			c.Item = []byte(r.Change.Raw)
		case r.Change.Item != nil:
			if c.Item, err = json.Marshal(r.Change.Item); err != nil {
				t.Fatalf("row %q: %v", r.Name, err)
			}
		}
		up.Changes = append(up.Changes, c)
		down.Changes = append(down.Changes, c)
		for _, d := range []struct {
			tc   *plugintest.StageCase
			want string
		}{{&up, r.Up}, {&down, r.Down}} {
			if d.want == "pass" {
				d.tc.Pass = append(d.tc.Pass, seq)
			} else {
				d.tc.Reasons[seq] = d.want
			}
		}
	}
	return []plugintest.StageCase{up, down}
}
