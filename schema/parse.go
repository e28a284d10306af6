package schema

import (
	"fmt"
	"slices"
	"sort"
)

// Supported schema formats.
var formats = []string{"onetable:1.1.0", "onetable:1.0.0"}

// Parse builds a Schema from a decoded document (as encoding/json would
// decode it into a map[string]any). Go maps have no order, so models and
// fields are listed sorted by name; use ParseBytes or Load to keep the
// declaration order. source names the document in faults. A `blend` key is
// a fault here: only Load can resolve blended files.
func Parse(doc map[string]any, source string) (*Schema, error) {
	return parseDocument(fromPlain(doc).(*object), source)
}

// ParseBytes decodes data as format ("json", "json5" or "yaml"/"yml") and
// parses it. source names the document in faults. A `blend` key is a fault
// here: only Load can resolve blended files.
func ParseBytes(data []byte, format, source string) (*Schema, error) {
	doc, err := decode(data, format)
	if err != nil {
		return nil, &Fault{Source: source, Msg: "syntax: " + err.Error(), Err: err}
	}
	return parseDocument(doc, source)
}

// parser gathers the faults of one document while building its Schema.
type parser struct {
	faults
	s *Schema
}

// parseDocument checks doc and builds its Schema.
func parseDocument(doc *object, source string) (*Schema, error) {
	p := &parser{faults: faults{source: source}, s: &Schema{
		Indexes: map[string]*Index{},
		Models:  map[string]*Model{},
	}}
	for _, k := range doc.keys {
		switch k {
		case "format", "version", "description", "indexes", "models", "params", "process":
		case "queries", "items", "extensions", "name":
			// OneTable keys with no meaning on the device.
		case "blend":
			p.add("blend", "not supported here: load the schema from a file to blend")
		default:
			p.add(k, "unknown top-level property")
		}
	}
	p.s.Format = p.requiredString(doc, "format")
	if p.s.Format != "" && !slices.Contains(formats, p.s.Format) {
		p.add("format", "%q is not supported (want %s)", p.s.Format, orList(formats))
	}
	p.s.Version = p.requiredString(doc, "version")
	if v, ok := doc.get("description"); ok {
		p.s.Description = p.str("description", v)
	}
	p.params(doc)
	p.indexes(doc)
	p.models(doc)
	p.process(doc)
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.s, nil
}

// params reads the table-wide params, with OneTable's defaults.
func (p *parser) params(doc *object) {
	ps := &p.s.Params
	ps.TypeField, ps.CreatedField, ps.UpdatedField, ps.Separator = "_type", "created", "updated", "#"
	raw, ok := doc.get("params")
	if !ok {
		return
	}
	o := p.obj("params", raw)
	if o == nil {
		return
	}
	for _, k := range o.keys {
		path, v := join("params", k), o.vals[k]
		switch k {
		case "isoDates":
			ps.IsoDates = p.boolean(path, v)
		case "nulls":
			ps.Nulls = p.boolean(path, v)
		case "partial":
			ps.Partial = p.boolean(path, v)
		case "timestamps":
			ps.Timestamps = p.timestamps(path, v)
		case "typeField":
			ps.TypeField = p.name(path, v, ps.TypeField)
		case "createdField":
			ps.CreatedField = p.name(path, v, ps.CreatedField)
		case "updatedField":
			ps.UpdatedField = p.name(path, v, ps.UpdatedField)
		case "separator":
			ps.Separator = p.str(path, v)
		case "warn", "hidden", "legacyEmpties":
			p.boolean(path, v) // accepted, no meaning on the device
		default:
			p.add(path, "unknown param")
		}
	}
}

func (p *parser) timestamps(path string, v any) Timestamps {
	switch v {
	case true:
		return TimestampsBoth
	case false:
		return TimestampsNone
	case "create":
		return TimestampsCreate
	case "update":
		return TimestampsUpdate
	}
	p.add(path, "%s is not one of true, false, 'create', 'update'", show(v))
	return TimestampsNone
}

// models parses every model, in declaration order.
func (p *parser) models(doc *object) {
	raw, ok := doc.get("models")
	if !ok {
		p.add("models", "required")
		return
	}
	o := p.obj("models", raw)
	if o == nil {
		return
	}
	for _, name := range o.keys {
		if m := p.model(name, o.vals[name]); m != nil {
			p.s.Models[name] = m
			p.s.ModelNames = append(p.s.ModelNames, name)
		}
	}
	sort.Strings(p.s.ModelNames)
}

// Helpers that check a value's kind and record a fault when it is wrong.

func (p *parser) requiredString(o *object, key string) string {
	v, ok := o.get(key)
	if !ok {
		p.add(key, "required")
		return ""
	}
	return p.str(key, v)
}

func (p *parser) obj(path string, v any) *object {
	o, ok := v.(*object)
	if !ok {
		p.add(path, "must be an object, not %s", show(v))
	}
	return o
}

func (p *parser) str(path string, v any) string {
	s, ok := v.(string)
	if !ok {
		p.add(path, "must be a string, not %s", show(v))
	}
	return s
}

// name is a non-empty string, or def after a fault.
func (p *parser) name(path string, v any, def string) string {
	s, ok := v.(string)
	if !ok || s == "" {
		p.add(path, "must be a non-empty string, not %s", show(v))
		return def
	}
	return s
}

func (p *parser) boolean(path string, v any) bool {
	b, ok := v.(bool)
	if !ok {
		p.add(path, "must be true or false, not %s", show(v))
	}
	return b
}

// strings reads a list of strings.
func (p *parser) strings(path string, v any) []string {
	l, ok := v.([]any)
	if !ok {
		p.add(path, "must be a list of strings, not %s", show(v))
		return nil
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			p.add(fmt.Sprintf("%s[%d]", path, i), "must be a string, not %s", show(e))
			continue
		}
		out = append(out, s)
	}
	return out
}

// show renders a document value for a message.
func show(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q", t)
	case *object:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprint(v)
}

// orList joins choices for a message: "a, b or c".
func orList(list []string) string {
	switch len(list) {
	case 0:
		return ""
	case 1:
		return list[0]
	}
	s := list[0]
	for _, e := range list[1 : len(list)-1] {
		s += ", " + e
	}
	return s + " or " + list[len(list)-1]
}
