package schema

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/titanous/json5"
)

// decodeJSON5 decodes JSON5, keeping key order. json5 decodes objects into
// Go maps, which lose the order, so each object is decoded through
// json5Node, which also scans the object's raw text for its keys in order.
func decodeJSON5(data []byte) (any, error) {
	if err := checkJSON5Depth(data, maxJSON5Depth); err != nil {
		return nil, err
	}
	var n json5Node
	if err := json5.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	return n.v, nil
}

// json5Node is one JSON5 value decoded into the ordered document shape.
type json5Node struct{ v any }

// UnmarshalJSON is called by json5 with the raw text of one value.
func (n *json5Node) UnmarshalJSON(raw []byte) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	switch raw[0] {
	case '{':
		var m map[string]*json5Node
		if err := json5.Unmarshal(raw, &m); err != nil {
			return err
		}
		o := newObject()
		for _, k := range json5Keys(raw) {
			if c, ok := m[k]; ok {
				o.set(k, c.value())
			}
		}
		// Keys the scan could not read (exotic escapes) go last, sorted.
		var rest []string
		for k := range m {
			if _, ok := o.vals[k]; !ok {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		for _, k := range rest {
			o.set(k, m[k].value())
		}
		n.v = o
	case '[':
		var l []*json5Node
		if err := json5.Unmarshal(raw, &l); err != nil {
			return err
		}
		vals := make([]any, len(l))
		for i, c := range l {
			vals[i] = c.value()
		}
		n.v = vals
	default:
		return json5.Unmarshal(raw, &n.v)
	}
	return nil
}

func (n *json5Node) value() any {
	if n == nil {
		return nil // null
	}
	return n.v
}

// json5Keys lists the keys of the JSON5 object whose text is raw (starting
// at its '{'), in order. It skips strings, comments and nested values; it
// does not check syntax, which json5 has done.
func json5Keys(raw []byte) []string {
	var keys []string
	depth := 0
	expectKey := false
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '/' && i+1 < len(raw) && raw[i+1] == '/':
			j := bytes.IndexByte(raw[i:], '\n')
			if j < 0 {
				return keys
			}
			i += j + 1
			continue
		case c == '/' && i+1 < len(raw) && raw[i+1] == '*':
			j := bytes.Index(raw[i+2:], []byte("*/"))
			if j < 0 {
				return keys
			}
			i += j + 4
			continue
		case c == '"' || c == '\'':
			end := stringEnd(raw, i)
			if depth == 1 && expectKey {
				keys = append(keys, unquoteKey(raw[i:end]))
				expectKey = false
			}
			i = end
			continue
		case c == '{' || c == '[':
			depth++
			expectKey = depth == 1
		case c == '}' || c == ']':
			depth--
		case c == ',':
			expectKey = depth == 1
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':':
		default:
			if depth == 1 && expectKey {
				j := i
				for j < len(raw) && !bytes.ContainsRune([]byte(": \t\r\n/"), rune(raw[j])) {
					j++
				}
				keys = append(keys, string(raw[i:j]))
				expectKey = false
				i = j
				continue
			}
		}
		i++
	}
	return keys
}

// stringEnd returns the index just past the quoted string starting at i.
func stringEnd(raw []byte, i int) int {
	q := raw[i]
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			j++
		case q:
			return j + 1
		}
	}
	return len(raw)
}

// unquoteKey decodes a quoted key with json5's own string rules.
func unquoteKey(quoted []byte) string {
	var s string
	if err := json5.Unmarshal(quoted, &s); err != nil {
		return string(quoted[1 : len(quoted)-1])
	}
	return s
}

// maxJSON5Depth bounds the nesting of a JSON5 schema: the decoder reads
// each nested value's text again, so its time grows with the square of
// the depth. Schemas nest a few levels (models, fields, nested schemas).
const maxJSON5Depth = 64

// checkJSON5Depth refuses JSON5 nested deeper than max, by a scan that
// skips strings ('…' and "…") and comments.
func checkJSON5Depth(b []byte, max int) error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"', '\'':
			for i++; i < len(b) && b[i] != c; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '/':
			if i+1 < len(b) && b[i+1] == '/' {
				for i < len(b) && b[i] != '\n' {
					i++
				}
			} else if i+1 < len(b) && b[i+1] == '*' {
				end := bytes.Index(b[i+2:], []byte("*/"))
				if end < 0 {
					return nil // unterminated: the decoder reports it
				}
				i += end + 3
			}
		case '{', '[':
			if depth++; depth > max {
				return fmt.Errorf("nested deeper than %d levels", max)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}
