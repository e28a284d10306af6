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
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), true
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 { // not a variable: literal text
			b.WriteString(rest[i:])
			return b.String(), true
		}
		name, size, pad := parseVar(rest[i+2 : i+j])
		v, ok := lookup(item, name)
		if !ok || v == nil {
			return b.String(), false
		}
		s := scalarString(v)
		if size > 0 && len(s) < size {
			s = strings.Repeat(pad, size-len(s)) + s
		}
		b.WriteString(s)
		rest = rest[i+j+1:]
	}
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
