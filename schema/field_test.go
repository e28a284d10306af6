package schema

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestCompileValidate(t *testing.T) {
	cases := []struct {
		src           string
		match, reject string
		err           string
	}{
		{src: "/^a+$/i", match: "AaA", reject: "ab"},
		{src: "^[0-9]+$", match: "123", reject: "12a"},
		{src: "/x/gu", match: "axb", reject: "ab"},
		{src: "/^a.b$/s", match: "a\nb", reject: "ab"},
		{src: `/^a\/b$/`, match: "a/b", reject: "ab"},
		{src: "/abc", match: "x/abc", reject: "abc"}, // no closing slash: the whole text is the pattern
		{src: "/a/q", err: "unknown flag 'q'"},
		{src: "/(?=a)/", err: "error parsing regexp"}, // lookahead: JS has it, Go does not
		{src: "([a-z]", err: "missing closing )"},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			re, err := compileValidate(c.src)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !re.MatchString(c.match) || re.MatchString(c.reject) {
				t.Errorf("%s: match(%q)=%v match(%q)=%v", re, c.match, re.MatchString(c.match), c.reject, re.MatchString(c.reject))
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	cases := []struct {
		in   any
		kind string
		size int
		err  string
	}{
		{in: "ulid", kind: "ulid"},
		{in: "uuid", kind: "uuid"},
		{in: "uid", kind: "uid", size: 10},
		{in: "uid(1)", kind: "uid", size: 1},
		{in: "uid(64)", kind: "uid", size: 64},
		{in: true, kind: "ulid"},
		{in: false},
		{in: "uid(0)", err: "must be 1 to 64"},
		{in: "uid(65)", err: "must be 1 to 64"},
		{in: "uid(x)", err: "must be 1 to 64"},
		{in: "ULID", err: "is not one of"},
		{in: float64(1), err: "is not one of"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.in), func(t *testing.T) {
			p := &parser{faults: faults{source: "t"}, s: &Schema{}}
			kind, size := p.generate("g", c.in)
			err := p.err()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || kind != c.kind || size != c.size {
				t.Errorf("got %q/%d (%v), want %q/%d", kind, size, err, c.kind, c.size)
			}
		})
	}
}

func TestParseTemplate(t *testing.T) {
	cases := []struct {
		tpl  string
		want []templateVar
		err  string
	}{
		{tpl: "account#", want: nil},
		{tpl: "${_type}#${id}", want: []templateVar{{Name: "_type", Pad: "0"}, {Name: "id", Pad: "0"}}},
		{tpl: "r#${seq:8}", want: []templateVar{{Name: "seq", Size: 8, Pad: "0"}}},
		{tpl: "r#${seq:8: }x", want: []templateVar{{Name: "seq", Size: 8, Pad: " "}}},
		{tpl: "c#${address.city}", want: []templateVar{{Name: "address.city", Pad: "0"}}},
		{tpl: "a#${id", err: "unterminated"},
		{tpl: "a#${}", err: "empty variable name"},
		{tpl: "a#${id:0}", err: "not a positive integer"},
		{tpl: "a#${id:2:}", err: "empty pad"},
		{tpl: "a#${id:2:0:x}", err: "want ${name}"},
	}
	for _, c := range cases {
		t.Run(c.tpl, func(t *testing.T) {
			got, err := parseTemplate(c.tpl)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("got %+v (%v), want %+v", got, err, c.want)
			}
		})
	}
	if root := (templateVar{Name: "address.city"}).Root(); root != "address" {
		t.Errorf("Root = %q", root)
	}
}

func TestJSON5KeyOrder(t *testing.T) {
	cases := []struct {
		text string
		keys []string
	}{
		{`{b: 1, a: 2}`, []string{"b", "a"}},
		{`{"z": {y: 1, x: 2}, 'it\'s': [1, {q: 1}], m: "a,b:c", n: null,}`, []string{"z", "it's", "m", "n"}},
		{"{ // k: 1,\n  /* j: 2, */ c: 3, $d_1: 'x}', e: {f: '{'} }", []string{"c", "$d_1", "e"}},
		{`{id: 1, other: 2, id: 3}`, []string{"id", "other"}}, // a repeated key keeps its first place
	}
	for _, c := range cases {
		v, err := decodeJSON5([]byte(c.text))
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		o := v.(*object)
		if !slices.Equal(o.keys, c.keys) {
			t.Errorf("%s: keys %q, want %q", c.text, o.keys, c.keys)
		}
	}
	v, _ := decodeJSON5([]byte(`{a: {d: 1, c: [true, 'x']}, b: null}`))
	if got := fmt.Sprintf("%#v", plain(v)); got != `map[string]interface {}{"a":map[string]interface {}{"c":[]interface {}{true, "x"}, "d":1}, "b":interface {}(nil)}` {
		t.Errorf("values: %s", got)
	}
	if d := plain(v).(map[string]any)["a"].(map[string]any)["d"]; d != float64(1) {
		t.Errorf("number %T %v, want float64", d, d)
	}
	if keys := v.(*object).vals["a"].(*object).keys; !slices.Equal(keys, []string{"d", "c"}) {
		t.Errorf("nested keys %v", keys)
	}
}

func TestMerge(t *testing.T) {
	parse := func(s string) *object {
		v, err := decodeJSON5([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return v.(*object)
	}
	base := parse(`{a: 1, m: {x: {t: 'string', r: true}, y: 1}, l: [1, 2]}`)
	over := parse(`{m: {x: {t: 'number'}, z: 2}, l: [3], b: 2}`)
	got := fmt.Sprint(plain(merge(base, over)))
	want := "map[a:1 b:2 l:[3] m:map[x:map[r:true t:number] y:1 z:2]]"
	if got != want {
		t.Errorf("merge = %s, want %s", got, want)
	}
	if k := merge(base, over).keys; !slices.Equal(k, []string{"a", "m", "l", "b"}) {
		t.Errorf("merged keys %v", k)
	}
	if fmt.Sprint(plain(base)) != "map[a:1 l:[1 2] m:map[x:map[r:true t:string] y:1]]" {
		t.Errorf("merge changed its input: %v", plain(base))
	}
}
