package db

import "testing"

// TestCompiledTemplates checks that a template compiled once expands as
// the text does, complete or cut at the first missing variable.
func TestCompiledTemplates(t *testing.T) {
	item := Item{"id": "42", "n": 7, "f": 1.5, "on": true, "nested": map[string]any{"x": "deep"}}
	for _, tc := range []struct {
		tmpl, want string
		complete   bool
	}{
		{"account#${id}", "account#42", true},
		{"${id}", "42", true},
		{"${id:6}", "000042", true},
		{"${id:6:_}", "____42", true},
		{"${n:3}#${f}#${on}", "007#1.5#true", true},
		{"a#${id}#b#${nested.x}", "a#42#b#deep", true},
		{"literal", "literal", true},
		{"", "", true},
		{"no${brace", "no${brace", true},
		{"a#${missing}#b", "a#", false},
		{"a#${id}#${missing}", "a#42#", false},
		{"${missing}", "", false},
		{"x#${id}${n}", "x#427", true},
	} {
		got, complete := compileTemplate(tc.tmpl).expand(item)
		if got != tc.want || complete != tc.complete {
			t.Errorf("%q: got %q complete=%v, want %q complete=%v", tc.tmpl, got, complete, tc.want, tc.complete)
		}
	}
}
