package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/titanous/json5"
	"gopkg.in/yaml.v3"
)

// formatOf names the document format of a file by its extension: "json",
// "json5" or "yaml"; "" if unknown.
func formatOf(path string) string {
	return normFormat(filepath.Ext(path))
}

func normFormat(format string) string {
	switch strings.ToLower(strings.TrimPrefix(format, ".")) {
	case "json":
		return "json"
	case "json5":
		return "json5"
	case "yaml", "yml":
		return "yaml"
	}
	return ""
}

// decode parses data in format into an ordered document whose top level
// must be a mapping.
func decode(data []byte, format string) (*object, error) {
	var v any
	var err error
	switch normFormat(format) {
	case "json":
		v, err = decodeJSON(data)
	case "json5":
		v, err = decodeJSON5(data)
	case "yaml":
		v, err = decodeYAML(data)
	default:
		return nil, fmt.Errorf("unknown format %q (want json, json5 or yaml)", format)
	}
	if err != nil {
		return nil, withLine(data, err)
	}
	o, ok := v.(*object)
	if !ok {
		return nil, errors.New("the document must be an object")
	}
	return o, nil
}

// withLine prefixes a JSON or JSON5 syntax error with its line and column.
func withLine(data []byte, err error) error {
	var off int64 = -1
	var je *json.SyntaxError
	var j5 *json5.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &je):
		off = je.Offset
	case errors.As(err, &j5):
		off = j5.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// decodeJSON decodes strict JSON, keeping key order.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	v, err := jsonValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the top-level value")
	}
	return v, nil
}

func jsonValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := newObject()
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := jsonValue(dec)
			if err != nil {
				return nil, err
			}
			o.set(kt.(string), v)
		}
		_, err := dec.Token() // '}'
		return o, err
	case json.Delim('['):
		l := []any{}
		for dec.More() {
			v, err := jsonValue(dec)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := dec.Token() // ']'
		return l, err
	}
	return tok, nil
}

// decodeYAML decodes YAML, keeping key order. Merge keys (<<) and aliases
// are resolved; integers become float64 and timestamps RFC 3339 strings, so
// that every format yields the same values.
func decodeYAML(data []byte) (any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	if n.Kind == 0 {
		return nil, errors.New("empty document")
	}
	budget := maxYAMLNodes
	return yamlValue(&n, 0, &budget)
}

func yamlValue(n *yaml.Node, depth int, budget *int) (any, error) {
	if depth > 100 {
		return nil, errors.New("nested too deeply (alias loop?)")
	}
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("more than %d values once aliases are expanded", maxYAMLNodes)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, errors.New("empty document")
		}
		return yamlValue(n.Content[0], depth+1, budget)
	case yaml.AliasNode:
		return yamlValue(n.Alias, depth+1, budget)
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlValue(c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.MappingNode:
		return yamlMapping(n, depth, budget)
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	switch t := v.(type) {
	case int:
		return float64(t), nil
	case uint64:
		return float64(t), nil
	case time.Time:
		return t.Format(time.RFC3339Nano), nil
	}
	return v, nil
}

// maxYAMLNodes bounds the values a YAML schema may expand to, aliases
// followed: a few hundred bytes of nested aliases would otherwise expand
// to billions of values.
const maxYAMLNodes = 1_000_000

// yamlMapping decodes a mapping; keys given explicitly win over keys merged
// in with <<.
func yamlMapping(n *yaml.Node, depth int, budget *int) (any, error) {
	o := newObject()
	var merged []*object
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, vn := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			v, err := yamlValue(vn, depth+1, budget)
			if err != nil {
				return nil, err
			}
			l, ok := v.([]any)
			if !ok {
				l = []any{v}
			}
			for _, e := range l {
				mo, ok := e.(*object)
				if !ok {
					return nil, fmt.Errorf("line %d: << must merge a mapping", k.Line)
				}
				merged = append(merged, mo)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: keys must be strings", k.Line)
		}
		v, err := yamlValue(vn, depth+1, budget)
		if err != nil {
			return nil, err
		}
		o.set(k.Value, v)
	}
	for _, mo := range merged {
		for _, k := range mo.keys {
			if _, ok := o.vals[k]; !ok {
				o.set(k, mo.vals[k])
			}
		}
	}
	return o, nil
}
