package where

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse checks that Parse never panics and that whatever it accepts can
// be evaluated without panicking.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/eval.yaml", "testdata/errors.yaml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var cases []struct {
			Expr string `yaml:"expr"`
		}
		if err := yaml.Unmarshal(b, &cases); err != nil {
			f.Fatal(err)
		}
		for _, c := range cases {
			f.Add(c.Expr)
		}
	}
	subs := map[string]any{"s": "x", "n": 1, "l": []any{1, "a"}, "z": nil}
	item := map[string]any{
		"a": 1, "b": "x", "c": []any{1, "a", map[string]any{"d": 2.5}}, "e": map[string]any{"f": true}, "g": nil,
	}
	f.Fuzz(func(t *testing.T, expr string) {
		e, err := Parse(expr, subs)
		if err != nil {
			if e != nil {
				t.Fatalf("Parse(%q) returned both an Expr and %v", expr, err)
			}
			return
		}
		e.Eval(item)
		e.Eval(nil)
		e.Attributes()
	})
}
