package where

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/iotod/iotod/pipeline"
	"gopkg.in/yaml.v3"
)

type evalCase struct {
	Name string         `yaml:"name"`
	Expr string         `yaml:"expr"`
	Subs map[string]any `yaml:"subs"`
	Item map[string]any `yaml:"item"`
	Want bool           `yaml:"want"`
}

type errCase struct {
	Expr string         `yaml:"expr"`
	Subs map[string]any `yaml:"subs"`
	Err  string         `yaml:"err"`
}

func loadYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func TestEval(t *testing.T) {
	var cases []evalCase
	loadYAML(t, "testdata/eval.yaml", &cases)
	if len(cases) < 50 {
		t.Fatalf("only %d cases loaded", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			e, err := Parse(c.Expr, c.Subs)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.Expr, err)
			}
			if got := e.Eval(c.Item); got != c.Want {
				t.Errorf("Eval(%q) = %v, want %v", c.Expr, got, c.Want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	var cases []errCase
	loadYAML(t, "testdata/errors.yaml", &cases)
	for _, c := range cases {
		t.Run(c.Expr, func(t *testing.T) {
			e, err := Parse(c.Expr, c.Subs)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error containing %q", c.Expr, e, c.Err)
			}
			if !strings.Contains(err.Error(), c.Err) {
				t.Errorf("Parse(%q) error\n got: %v\nwant: ...%s...", c.Expr, err, c.Err)
			}
			if !errors.Is(err, pipeline.ErrInvalid) {
				t.Errorf("error %v does not wrap pipeline.ErrInvalid", err)
			}
		})
	}
}

// TestNumberTypes checks that items holding any Go number type, or
// json.Number, compare numerically against literals.
func TestNumberTypes(t *testing.T) {
	type myInt int16
	values := []any{
		int(7), int8(7), int16(7), int32(7), int64(7), uint(7), uint8(7), uint16(7),
		uint32(7), uint64(7), float32(7), float64(7), json.Number("7"), json.Number("7.0"), myInt(7),
	}
	for _, v := range values {
		item := map[string]any{"n": v}
		for expr, want := range map[string]bool{
			"${n} = {7}": true, "${n} = {7.0}": true, "${n} <> {7}": false, "${n} > {6.5}": true,
			"${n} < {7.5}": true, "${n} >= {8}": false, "${n} BETWEEN {-1} AND {7}": true,
			"${n} IN ({1}, {7})": true, `${n} = {"7"}`: false,
		} {
			e, err := Parse(expr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Eval(item); got != want {
				t.Errorf("%T(%v): %s = %v, want %v", v, v, expr, got, want)
			}
		}
	}
}

func TestNumberEdges(t *testing.T) {
	cases := []struct {
		item any
		expr string
		subs map[string]any
		want bool
	}{
		// Integers beyond 2^53 compare exactly, also against floats.
		{int64(1<<62 + 1), "${n} > @{x}", map[string]any{"x": int64(1 << 62)}, true},
		{int64(1<<62 + 1), "${n} > @{x}", map[string]any{"x": float64(1 << 62)}, true},
		{float64(1 << 62), "${n} < @{x}", map[string]any{"x": int64(1<<62 + 1)}, true},
		{int64(9007199254740993), "${n} = @{x}", map[string]any{"x": float64(9007199254740992)}, false},
		{json.Number("9007199254740993"), "${n} > {9007199254740992}", nil, true},
		{uint64(1 << 63), "${n} > @{x}", map[string]any{"x": int64(1<<63 - 1)}, true},
		{json.Number("1e400"), "${n} > {1}", nil, true},
		{json.Number("abc"), "${n} <> {1}", nil, true},
		{json.Number("abc"), "${n} < {1}", nil, false},
		{-2.5, "${n} < {-2}", nil, true},
		{-2.5, "${n} > {-3}", nil, true},
		{2.5, "${n} > {2}", nil, true},
		{float32(0.5), "${n} = {.5}", nil, true},
		// NaN is never equal, ordered or between.
		{nan(), "${n} = ${n}", nil, false},
		{nan(), "${n} < {1}", nil, false},
		{nan(), "${n} >= {1}", nil, false},
		{nan(), "${n} <> {1}", nil, true},
		{int64(5), "${n} < @{x}", map[string]any{"x": nan()}, false},
	}
	for _, c := range cases {
		e, err := Parse(c.expr, c.subs)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Eval(map[string]any{"n": c.item}); got != c.want {
			t.Errorf("n=%T(%v): %s with %v = %v, want %v", c.item, c.item, c.expr, c.subs, got, c.want)
		}
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

// TestGoTypes checks typed slices, maps, []byte and named types in items and
// substitutions, as Go callers (not JSON) produce them.
func TestGoTypes(t *testing.T) {
	type color string
	item := map[string]any{
		"tags":  []string{"a", "b"},
		"nums":  []int{1, 2, 3},
		"meta":  map[string]string{"k": "v"},
		"bin":   []byte("hello"),
		"color": color("red"),
		"ptr":   new(int),
	}
	subs := map[string]any{
		"tags": []string{"a", "b"}, "bin": []byte("he"), "ids": []int64{3, 9},
		"k": map[string]any{"k": "v"},
	}
	for expr, want := range map[string]bool{
		"${tags} = @{tags}":                true,
		"contains(${tags}, {b})":           true,
		"contains(${nums}, {3})":           true,
		"attribute_type(${nums}, {NS})":    true,
		"attribute_type(${tags}, {SS})":    true,
		"size(${meta}) = {1}":              true,
		"${meta} = @{k}":                   true,
		"${meta.k} = {v}":                  true,
		"attribute_type(${bin}, {B})":      true,
		"begins_with(${bin}, @{bin})":      true,
		"contains(${bin}, @{bin})":         true,
		"${bin} > @{bin}":                  true,
		"size(${bin}) = {5}":               true,
		"${color} = {red}":                 true,
		"${ptr} = {0}":                     true,
		"${nums[2]} IN (@{...ids})":        true,
		"${nums[0]} IN (@{...ids})":        false,
		"begins_with(${color}, {r})":       true,
		"contains(${bin}, {he})":           false, // string vs binary
		"attribute_type(${bin}, {L})":      false,
		"attribute_type(${tags}, {BS})":    false,
		"attribute_type(${missing}, {BS})": false,
	} {
		e, err := Parse(expr, subs)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Eval(item); got != want {
			t.Errorf("%s = %v, want %v", expr, got, want)
		}
	}
}

func TestUnsupportedSubstitution(t *testing.T) {
	for _, v := range []any{struct{}{}, make(chan int), func() {}, map[int]string{1: "a"}} {
		_, err := Parse("${a} = @{v}", map[string]any{"v": v})
		if err == nil || !strings.Contains(err.Error(), "substitution @{v} has unsupported type") {
			t.Errorf("%T: got %v", v, err)
		}
	}
	_, err := Parse("${a} IN (@{...v})", map[string]any{"v": []any{1, struct{}{}}})
	if err == nil || !strings.Contains(err.Error(), "unsupported type struct {}") {
		t.Errorf("splat element: got %v", err)
	}
}

func TestAttributes(t *testing.T) {
	e, err := Parse("${b} = {1} and (size(${a.x}) > {1} or attribute_exists(${c[0].d})) and ${b} <> ${a.y} and contains(${d}, ${e})", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"b", "a", "c", "d", "e"}
	got := e.Attributes()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Attributes() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if e.Attributes()[0] != "b" {
		t.Error("Attributes returned the internal slice")
	}
}

func TestNilExpr(t *testing.T) {
	var e *Expr
	if !e.Eval(map[string]any{"a": 1}) || e.Attributes() != nil || e.String() != "" {
		t.Error("nil Expr should match everything and have no attributes")
	}
}

func TestLimits(t *testing.T) {
	long := "${a} = {" + strings.Repeat("x", MaxLength) + "}"
	_, err := Parse(long, nil)
	if !errors.Is(err, pipeline.ErrTooLarge) || !strings.Contains(err.Error(), "over the 4096-byte limit") {
		t.Errorf("long expression: %v", err)
	}

	ok := strings.Repeat("(", MaxDepth) + "${a} = {1}" + strings.Repeat(")", MaxDepth)
	if _, err := Parse(ok, nil); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
	deep := strings.Repeat("(", MaxDepth+1) + "${a} = {1}" + strings.Repeat(")", MaxDepth+1)
	if _, err := Parse(deep, nil); err == nil || !strings.Contains(err.Error(), "position 33: nesting is deeper than 32") {
		t.Errorf("parens: %v", err)
	}
	nots := strings.Repeat("NOT ", MaxDepth+1) + "${a} = {1}"
	if _, err := Parse(nots, nil); err == nil || !strings.Contains(err.Error(), "nesting is deeper") {
		t.Errorf("nots: %v", err)
	}
	mixed := strings.Repeat("not (", MaxDepth/2+1) + "${a} = {1}" + strings.Repeat(")", MaxDepth/2+1)
	if _, err := Parse(mixed, nil); err == nil || !strings.Contains(err.Error(), "nesting is deeper") {
		t.Errorf("mixed: %v", err)
	}
	// Siblings do not add depth.
	flat := strings.Repeat("(${a} = {1}) and ", 200) + "(${a} = {1})"
	e, err := Parse(flat, nil)
	if err != nil || !e.Eval(map[string]any{"a": 1}) {
		t.Errorf("flat: %v", err)
	}

	in := "${a} IN (" + strings.TrimSuffix(strings.Repeat("{1},", MaxInValues+1), ",") + ")"
	if _, err := Parse(in, nil); err == nil || !strings.Contains(err.Error(), "more than 100 values") {
		t.Errorf("IN list: %v", err)
	}
	big := make([]any, MaxInValues+1)
	if _, err := Parse("${a} IN (@{...l})", map[string]any{"l": big}); err == nil || !strings.Contains(err.Error(), "over the IN limit") {
		t.Errorf("IN splat: %v", err)
	}
	half := make([]any, MaxInValues/2+1)
	if _, err := Parse("${a} IN (@{...l}, @{...l})", map[string]any{"l": half}); err == nil {
		t.Error("two splats over the IN limit: no error")
	}
}

func TestErrorType(t *testing.T) {
	_, err := Parse("${a} > ", nil)
	var pe *Error
	if !errors.As(err, &pe) || pe.Pos != 8 || pe.Msg != `expected value after ">"` {
		t.Fatalf("got %#v", err)
	}
}

// TestJSONItem evaluates against an item decoded with UseNumber, as a store
// reading JSON might hold it.
func TestJSONItem(t *testing.T) {
	dec := json.NewDecoder(strings.NewReader(`{"temp": 21.5, "count": 3, "tags": ["a", 1], "geo": {"lat": 48.8}}`))
	dec.UseNumber()
	var item map[string]any
	if err := dec.Decode(&item); err != nil {
		t.Fatal(err)
	}
	for expr, want := range map[string]bool{
		"${temp} > {21} and ${count} = {3}": true,
		"contains(${tags}, {1})":            true,
		"${geo.lat} BETWEEN {48} AND {49}":  true,
		"${count} IN ({3.0})":               true,
		"attribute_type(${count}, {N})":     true,
	} {
		e, err := Parse(expr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Eval(item); got != want {
			t.Errorf("%s = %v, want %v", expr, got, want)
		}
	}
}

func TestConcurrentEval(t *testing.T) {
	e, err := Parse("${a} > {1} and contains(${t}, {x})", nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			item := map[string]any{"a": i, "t": []any{"x"}}
			if got := e.Eval(item); got != (i > 1) {
				t.Errorf("a=%d: %v", i, got)
			}
		})
	}
	wg.Wait()
}
