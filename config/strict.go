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
// a value can never change the document's structure). The loader therefore
// walks the merged tree against the Go types itself: it rejects unknown
// keys and values of the wrong kind, and reports each with its file, line
// and key path, all of them rather than the first. What passes is then
// decoded by yaml.v3, with the faulty values left out (see pruned).

var (
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
	// handledType marks a key whose value the caller checks itself.
	handledType = reflect.TypeFor[yaml.Node]()
)

// pos is where a value was written.
type pos struct {
	file string
	line int
}

func (l *loader) pos(n *yaml.Node) pos { return pos{file: l.origin[n], line: n.Line} }

// failAt records a problem at p. One path gets one error: the first.
func (l *loader) failAt(p pos, path, format string, args ...any) {
	if path != "" && l.failed[path] {
		return
	}
	l.failed[path] = true
	l.errs = append(l.errs, &Error{File: p.file, Line: p.line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) failNode(n *yaml.Node, path, format string, args ...any) {
	l.failAt(l.pos(n), path, format, args...)
}

// expandScalars replaces variables in every scalar value of n (not in keys).
// An expanded plain scalar loses its resolved tag, so "${PORT}" can become a
// number.
func (l *loader) expandScalars(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.SequenceNode:
		for i, child := range n.Content {
			l.expandScalars(child, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			l.expandScalars(n.Content[i+1], join(path, n.Content[i].Value))
		}
	case yaml.ScalarNode:
		v, err := expand(n.Value, l.env)
		if err != nil {
			l.failNode(n, path, "%v", err)
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

// isNull reports whether n is absent or an explicit null.
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// check reports where n does not fit type t.
func (l *loader) check(n *yaml.Node, t reflect.Type, path string) {
	if t == handledType || isNull(n) {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		l.decodeLeaf(n, t, path)
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if l.wantKind(n, yaml.ScalarNode, path) {
			l.decodeLeaf(n, t, path)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		l.check(n, t.Elem(), path)
	case reflect.Interface:
	case reflect.Struct:
		fields := yamlFields(t)
		l.checkMapping(n, path, func(key string) reflect.Type { return fields[key] }, sortedKeys(fields))
	case reflect.Map:
		l.checkMapping(n, path, func(string) reflect.Type { return t.Elem() }, nil)
	case reflect.Slice, reflect.Array:
		if l.wantKind(n, yaml.SequenceNode, path) {
			for i, child := range n.Content {
				l.check(child, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	default:
		if l.wantKind(n, yaml.ScalarNode, path) {
			l.decodeLeaf(n, t, path)
		}
	}
}

// checkMapping checks each key of mapping n: field returns the type of a
// key's value, nil for an unknown key; known lists the keys for the error.
func (l *loader) checkMapping(n *yaml.Node, path string, field func(string) reflect.Type, known []string) {
	if !l.wantKind(n, yaml.MappingNode, path) {
		return
	}
	if _, ok := l.lines[path]; !ok {
		l.lines[path] = l.pos(n)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.failNode(k, path, "keys must be plain strings")
			continue
		}
		p := join(path, k.Value)
		l.lines[p] = l.pos(k)
		ft := field(k.Value)
		if ft == nil {
			l.failNode(k, p, "unknown key (known keys: %s)", strings.Join(known, ", "))
			continue
		}
		l.check(v, ft, p)
	}
}

func (l *loader) wantKind(n *yaml.Node, want yaml.Kind, path string) bool {
	if n.Kind == want {
		return true
	}
	l.failNode(n, path, "want %s, got %s", kindName(want), kindName(n.Kind))
	return false
}

// decodeLeaf decodes n into a fresh t to check its value. The error of a
// type's own UnmarshalYAML or UnmarshalText is reported as it is.
func (l *loader) decodeLeaf(n *yaml.Node, t reflect.Type, path string) {
	v := reflect.New(t)
	if _, ok := v.Interface().(yaml.Unmarshaler); ok {
		if err := n.Decode(v.Interface()); err != nil {
			l.failNode(n, path, "%s", faultText(err))
		}
		return
	}
	if u, ok := v.Interface().(encoding.TextUnmarshaler); ok {
		if err := u.UnmarshalText([]byte(n.Value)); err != nil {
			l.failNode(n, path, "%s", faultText(err))
		}
		return
	}
	if err := n.Decode(v.Interface()); err != nil {
		l.failNode(n, path, "%q is not %s", n.Value, typeName(t))
	}
}

// pruned returns a copy of n (at path) without the values already found
// faulty, so that decoding it fails on none of them and keeps their
// defaults.
func (l *loader) pruned(n *yaml.Node, path string) *yaml.Node {
	cp := *n
	cp.Content = nil
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			if !l.failed[p] {
				cp.Content = append(cp.Content, n.Content[i], l.pruned(n.Content[i+1], p))
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if !l.failed[p] {
				cp.Content = append(cp.Content, l.pruned(c, p))
			}
		}
	}
	return &cp
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
	case t.Kind() == reflect.String:
		return "a string"
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
