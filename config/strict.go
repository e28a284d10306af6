package config

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// yaml.v3 offers strict decoding (KnownFields) only on a Decoder reading
// text, not on a yaml.Node, and variables are expanded on the node tree (so
// a value can never change the document's structure). The checker below
// therefore walks the expanded tree against the Go types itself: it rejects
// unknown keys, duplicate keys and values of the wrong kind, and reports each
// with its line and key path, all of them rather than the first.

var (
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
)

// checker walks a node tree, expanding variables and recording the line of
// every key path.
type checker struct {
	file  string
	env   Lookup
	errs  Errors
	lines map[string]int
	// failed holds the paths already reported: one mistake is one error.
	failed map[string]bool
}

func (c *checker) fail(line int, path, format string, args ...any) {
	if path != "" && c.failed[path] {
		return
	}
	c.failed[path] = true
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// expandScalars replaces variables in every scalar value of n (not in keys).
// An expanded plain scalar loses its resolved tag, so "${PORT}" can become a
// number.
func (c *checker) expandScalars(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, child := range n.Content {
			p := path
			if n.Kind == yaml.SequenceNode {
				p = fmt.Sprintf("%s[%d]", path, i)
			}
			c.expandScalars(child, p)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			c.expandScalars(n.Content[i+1], join(path, n.Content[i].Value))
		}
	case yaml.ScalarNode:
		v, err := expand(n.Value, c.env)
		if err != nil {
			c.fail(n.Line, path, "%v", err)
			return
		}
		if v != n.Value {
			n.Value = v
			if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
				n.Tag = ""
			}
		}
	}
}

// check reports where n does not fit type t.
func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			c.check(n.Content[0], t, path)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		c.check(n.Alias, t, path)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		c.decodeLeaf(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		c.check(n, t.Elem(), path)
	case reflect.Interface:
	case reflect.Struct:
		if c.wantKind(n, yaml.MappingNode, path) {
			fields := yamlFields(t)
			c.checkMapping(n, path, func(key string) (reflect.Type, []string) {
				if ft, ok := fields[key]; ok {
					return ft, nil
				}
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				slices.Sort(names)
				return nil, names
			}, t)
		}
	case reflect.Map:
		if c.wantKind(n, yaml.MappingNode, path) {
			c.checkMapping(n, path, func(string) (reflect.Type, []string) { return t.Elem(), nil }, t)
		}
	case reflect.Slice, reflect.Array:
		if c.wantKind(n, yaml.SequenceNode, path) {
			for i, child := range n.Content {
				c.check(child, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	default:
		if c.wantKind(n, yaml.ScalarNode, path) {
			c.decodeLeaf(n, t, path)
		}
	}
}

// checkMapping checks each key of mapping n: field returns the value type
// of a key, or nil and the known keys when the key is unknown.
func (c *checker) checkMapping(n *yaml.Node, path string, field func(string) (reflect.Type, []string), self reflect.Type) {
	if _, ok := c.lines[path]; !ok {
		c.lines[path] = n.Line
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			c.check(v, self, path)
			continue
		}
		p := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			c.fail(k.Line, path, "keys must be plain strings")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			c.fail(k.Line, p, "duplicate key (first set on line %d)", first)
			// Drop the pair, so decoding (which stops at a duplicate) can
			// go on to find the other problems.
			n.Content = slices.Delete(n.Content, i, i+2)
			i -= 2
			continue
		}
		seen[k.Value] = k.Line
		c.lines[p] = k.Line
		ft, known := field(k.Value)
		if ft == nil {
			c.fail(k.Line, p, "unknown key (known keys: %s)", strings.Join(known, ", "))
			continue
		}
		c.check(v, ft, p)
	}
}

func (c *checker) wantKind(n *yaml.Node, want yaml.Kind, path string) bool {
	if n.Kind == want {
		return true
	}
	c.fail(n.Line, path, "want %s, got %s", kindName(want), kindName(n.Kind))
	return false
}

// decodeLeaf decodes n into a fresh t to check its value.
func (c *checker) decodeLeaf(n *yaml.Node, t reflect.Type, path string) {
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		c.fail(n.Line, path, "%q is not %s", n.Value, typeName(t))
	}
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration (such as 500ms, 5s or 1m)"
	case t.Kind() == reflect.Bool:
		return "a boolean (true or false)"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr:
		return "a non-negative integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a valid " + t.String()
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "a document"
}

// yamlFields maps the YAML keys of struct t to their Go types, following
// yaml.v3's rules: the tag name, or the lower-cased field name; ",inline"
// structs add their fields; "-" and unexported fields are skipped.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
