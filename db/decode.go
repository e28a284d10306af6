package db

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// The read path's JSON decoder. A stored item is a JSON object; it is
// decoded the way encoding/json with UseNumber decodes into an Item
// (numbers as json.Number, objects as map[string]any, arrays as []any),
// but from one string: every string and number of the item is a substring
// of it, so a decode allocates the map, the string once and the interface
// boxes, and nothing per byte. The visible variant leaves out the
// attributes a caller does not see as it goes, so nothing is copied to
// strip them.

var errSyntax = errors.New("invalid JSON")

// decodeItem decodes a stored item, every attribute of it.
func decodeItem(b []byte) (Item, error) {
	return decodeItemString(string(b), nil, nil)
}

// decodeItemString decodes the stored item s; with m, only the attributes
// visible under p (as strip would leave them, before any projection).
func decodeItemString(s string, m *model, p *Params) (Item, error) {
	d := decoder{s: s}
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != '{' {
		return nil, d.fail()
	}
	item, err := d.object(m, p)
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.i != len(d.s) {
		return nil, d.fail()
	}
	return item, nil
}

// visibleAttr says whether attribute k of m is shown under p.
func (m *model) visibleAttr(k string, p *Params) bool {
	showHidden := p != nil && p.Hidden
	if k == VersionAttr {
		return showHidden
	}
	f := m.Fields[k]
	return f != nil && (!f.Hidden || showHidden)
}

type decoder struct {
	s string
	i int
}

func (d *decoder) fail() error {
	if d.i >= len(d.s) {
		return fmt.Errorf("%w: unexpected end", errSyntax)
	}
	return fmt.Errorf("%w: unexpected %q at offset %d", errSyntax, d.s[d.i], d.i)
}

func (d *decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// object decodes the object at d.i (which is '{'); with m, only the
// attributes m shows under p.
func (d *decoder) object(m *model, p *Params) (map[string]any, error) {
	d.i++
	out := make(map[string]any, 8)
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return out, nil
	}
	for {
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, d.fail()
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, d.fail()
		}
		d.i++
		d.ws()
		if m != nil && !m.visibleAttr(k, p) {
			if err := d.skip(); err != nil {
				return nil, err
			}
		} else {
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		if end, err := d.next('}'); err != nil {
			return nil, err
		} else if end {
			return out, nil
		}
	}
}

// next reads what follows a member of an object or array: a comma
// (another member), or close (the end).
func (d *decoder) next(close byte) (end bool, err error) {
	d.ws()
	if d.i >= len(d.s) {
		return false, d.fail()
	}
	switch d.s[d.i] {
	case ',':
		d.i++
		return false, nil
	case close:
		d.i++
		return true, nil
	}
	return false, d.fail()
}

func (d *decoder) array() ([]any, error) {
	d.i++
	out := []any{}
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		return out, nil
	}
	for {
		d.ws()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if end, err := d.next(']'); err != nil {
			return nil, err
		} else if end {
			return out, nil
		}
	}
}

func (d *decoder) value() (any, error) {
	if d.i >= len(d.s) {
		return nil, d.fail()
	}
	switch c := d.s[d.i]; {
	case c == '"':
		return d.str()
	case c == '{':
		return d.object(nil, nil)
	case c == '[':
		return d.array()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case d.lit("true"):
		return true, nil
	case d.lit("false"):
		return false, nil
	case d.lit("null"):
		return nil, nil
	}
	return nil, d.fail()
}

// skip passes over the value at d.i, checking its syntax.
func (d *decoder) skip() error {
	if d.i >= len(d.s) {
		return d.fail()
	}
	switch c := d.s[d.i]; {
	case c == '"':
		return d.skipStr()
	case c == '{' || c == '[':
		// rare (hidden or dropped structured attributes): decode and drop
		_, err := d.value()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := d.number()
		return err
	case d.lit("true"), d.lit("false"), d.lit("null"):
		return nil
	}
	return d.fail()
}

func (d *decoder) lit(word string) bool {
	if len(d.s)-d.i >= len(word) && d.s[d.i:d.i+len(word)] == word {
		d.i += len(word)
		return true
	}
	return false
}

// str decodes the string at d.i (which is '"'): a substring of the input
// unless it has escapes.
func (d *decoder) str() (string, error) {
	start := d.i + 1
	high := false
	for j := start; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			if high && !utf8.ValidString(d.s[start:j]) {
				return d.escaped(start) // invalid UTF-8 becomes U+FFFD, as encoding/json has it
			}
			d.i = j + 1
			return d.s[start:j], nil
		case c >= 0x80:
			high = true
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			d.i = j
			return "", d.fail()
		}
	}
	d.i = len(d.s)
	return "", d.fail()
}

// escaped decodes a string with escapes (or invalid UTF-8) through
// encoding/json.
func (d *decoder) escaped(start int) (string, error) {
	d.i = start - 1
	if err := d.skipStr(); err != nil {
		return "", err
	}
	var out string
	if err := stdjson.Unmarshal([]byte(d.s[start-1:d.i]), &out); err != nil {
		return "", fmt.Errorf("%w: %v", errSyntax, err)
	}
	return out, nil
}

func (d *decoder) skipStr() error {
	for j := d.i + 1; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			d.i = j + 1
			return nil
		case c == '\\':
			j++
		case c < 0x20:
			d.i = j
			return d.fail()
		}
	}
	d.i = len(d.s)
	return d.fail()
}

// number decodes the JSON number at d.i as a json.Number.
func (d *decoder) number() (stdjson.Number, error) {
	start := d.i
	if d.i < len(d.s) && d.s[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.s) && d.s[d.i] == '0':
		d.i++
	case d.i < len(d.s) && d.s[d.i] >= '1' && d.s[d.i] <= '9':
		d.digits()
	default:
		return "", d.fail()
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if !d.digits() {
			return "", d.fail()
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if !d.digits() {
			return "", d.fail()
		}
	}
	return stdjson.Number(d.s[start:d.i]), nil
}

func (d *decoder) digits() bool {
	start := d.i
	for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}
