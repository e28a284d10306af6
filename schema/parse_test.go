package schema

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/iotod/iotod/errs"
)

// goDoc is a schema as Go values, the way a caller builds one in code.
func goDoc() map[string]any {
	return map[string]any{
		"format":  "onetable:1.1.0",
		"version": "1",
		"indexes": map[string]any{"primary": map[string]any{"hash": "pk", "sort": "sk"}},
		"params":  map[string]any{"timestamps": "update"},
		"models": map[string]any{
			"Zeta": map[string]any{
				"pk":    map[string]any{"type": "string", "value": "z#"},
				"sk":    map[string]any{"type": "string", "value": "z#${id}"},
				"id":    map[string]any{"type": "String", "generate": "uid"},
				"count": map[string]any{"type": "number", "default": 3},
				"tags":  map[string]any{"type": "array", "default": []string{"a"}},
			},
			"Alpha": map[string]any{
				"pk": map[string]any{"type": "string", "value": "a#"},
				"sk": map[string]any{"type": "string"},
			},
		},
		"process": map[string]any{
			"Zeta":  map[string]any{"enable": "device", "sync": "up"},
			"Alpha": map[string]any{"enable": "cloud"},
		},
	}
}

func TestParseMap(t *testing.T) {
	s, err := Parse(goDoc(), "code")
	if err != nil {
		t.Fatal(err)
	}
	z, err := s.Model("Zeta")
	if err != nil {
		t.Fatal(err)
	}
	// Go maps have no order: fields come sorted, implicit fields last.
	if want := []string{"count", "id", "pk", "sk", "tags", "_type", "updated"}; !slices.Equal(z.FieldNames, want) {
		t.Errorf("fields %v, want %v", z.FieldNames, want)
	}
	if f := z.Field("count"); f.Default != float64(3) {
		t.Errorf("count default %#v, want float64(3)", f.Default)
	}
	if f := z.Field("id"); f.Generate != "uid" || f.GenerateSize != 10 {
		t.Errorf("id = %+v", f)
	}
	if z.Field("nope") != nil {
		t.Errorf("Field of an unknown name must be nil")
	}
}

func TestParseBytes(t *testing.T) {
	cases := []struct {
		name, data, format, want string
	}{
		{"json5 ok", `{format: 'onetable:1.1.0', version: '1', indexes: {primary: {hash: 'pk'}}, models: {}}`, "json5", ""},
		{"yml ok", "format: onetable:1.1.0\nversion: '1'\nindexes: {primary: {hash: pk}}\nmodels: {}\n", ".yml", ""},
		{"unknown format", `{}`, "toml", `mem: syntax: unknown format "toml"`},
		{"not an object", `[1, 2]`, "json", "mem: syntax: the document must be an object"},
		{"blend needs a file", `{blend: ['a.json5']}`, "json5", "mem: blend: not supported here"},
		{"missing everything", `{}`, "json", "mem: format: required"},
		{"wrong kinds", `{"format": 1, "version": "1", "indexes": [], "models": {}}`, "json", "mem: format: must be a string, not 1"},
		{"yaml syntax", "a: [1\n", "yaml", "mem: syntax: yaml:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseBytes([]byte(c.data), c.format, "mem")
			if c.want == "" {
				if err != nil || s == nil {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, errs.Invalid) {
				t.Errorf("error %v; want ErrInvalid containing %q", err, c.want)
			}
		})
	}
}

func TestModelLookup(t *testing.T) {
	s, err := Parse(goDoc(), "code")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Model("Ghost")
	if !errors.Is(err, errs.NotFound) || !strings.Contains(err.Error(), `"Ghost"`) ||
		!strings.Contains(err.Error(), "known: Alpha, Zeta") {
		t.Errorf("Model(Ghost) error = %v", err)
	}
	if p := s.Primary(); p == nil || p.Hash != "pk" || p.Sort != "sk" {
		t.Errorf("Primary() = %+v", p)
	}
}

func TestEnabledOn(t *testing.T) {
	s, err := Parse(goDoc(), "code")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		side Side
		want []string
	}{
		{SideDevice, []string{"Zeta"}},
		{SideCloud, []string{"Alpha"}},
		{SideBoth, []string{"Alpha", "Zeta"}},
	}
	for _, c := range cases {
		v := s.EnabledOn(c.side)
		if !slices.Equal(v.ModelNames, c.want) || len(v.Models) != len(c.want) {
			t.Errorf("EnabledOn(%s) = %v (%d models), want %v", c.side, v.ModelNames, len(v.Models), c.want)
		}
		if _, err := v.Model(c.want[0]); err != nil {
			t.Errorf("view lost %s: %v", c.want[0], err)
		}
	}
	if len(s.ModelNames) != 2 {
		t.Errorf("EnabledOn changed the schema it views: %v", s.ModelNames)
	}
	if _, err := s.EnabledOn(SideDevice).Model("Alpha"); !errors.Is(err, errs.NotFound) {
		t.Errorf("a cloud model must not exist on the device: %v", err)
	}
}
