package db

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// expand fills a OneTable value template such as "account#${id}" or
// "${id:8:0}" from item. It returns the text up to the first variable it
// cannot fill and complete=false when a variable is missing: a partial key
// that find turns into a begins-with query.
func expand(tmpl string, item Item) (out string, complete bool) {
	return compileTemplate(tmpl).expand(item)
}

// template is a value template split once into literal text and
// variables, so the read and write paths do not parse it per item.
type template struct {
	parts []templatePart
	// lits is the length of the literal text, to size the result.
	lits int
}

type templatePart struct {
	lit  string // literal text, when name is empty
	name string
	size int
	pad  string
}

func compileTemplate(tmpl string) *template {
	t := &template{}
	rest := tmpl
	for rest != "" {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 { // not a variable: literal text
			break
		}
		if i > 0 {
			t.parts = append(t.parts, templatePart{lit: rest[:i]})
			t.lits += i
		}
		name, size, pad := parseVar(rest[i+2 : i+j])
		t.parts = append(t.parts, templatePart{name: name, size: size, pad: pad})
		rest = rest[i+j+1:]
	}
	if rest != "" {
		t.parts = append(t.parts, templatePart{lit: rest})
		t.lits += len(rest)
	}
	return t
}

// expand fills t from item, as the package's expand does.
func (t *template) expand(item Item) (string, bool) {
	if len(t.parts) == 2 && t.parts[0].name == "" && t.parts[1].name != "" && t.parts[1].size == 0 {
		// The common "prefix#${var}" shape, in one concatenation.
		v, ok := lookup(item, t.parts[1].name)
		if !ok || v == nil {
			return t.parts[0].lit, false
		}
		return t.parts[0].lit + scalarString(v), true
	}
	var b strings.Builder
	b.Grow(t.lits + 16)
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		v, ok := lookup(item, p.name)
		if !ok || v == nil {
			return b.String(), false
		}
		s := scalarString(v)
		if p.size > 0 && len(s) < p.size {
			s = strings.Repeat(p.pad, p.size-len(s)) + s
		}
		b.WriteString(s)
	}
	return b.String(), true
}

// templateVars lists the variable names a template uses.
func templateVars(tmpl string) []string {
	var names []string
	rest := tmpl
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			return names
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return names
		}
		name, _, _ := parseVar(rest[i+2 : i+j])
		names = append(names, name)
		rest = rest[i+j+1:]
	}
}

// parseVar splits "name:size:pad". Pad defaults to "0".
func parseVar(v string) (name string, size int, pad string) {
	parts := strings.SplitN(v, ":", 3)
	name, pad = parts[0], "0"
	if len(parts) > 1 {
		size, _ = strconv.Atoi(parts[1])
	}
	if len(parts) > 2 && parts[2] != "" {
		pad = parts[2][:1]
	}
	return name, size, pad
}

// lookup reads a possibly dotted attribute path.
func lookup(item Item, path string) (any, bool) {
	if v, ok := item[path]; ok {
		return v, true
	}
	cur := any(item)
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// scalarString renders a value as it appears inside a key.
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}
