package schema

import (
	"regexp"
	"slices"
	"strings"
)

var modelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// model parses one model: its fields in order, then the fields OneTable
// adds (the type field, timestamps), then the checks that need all fields.
func (p *parser) model(name string, v any) *Model {
	path := join("models", name)
	if !modelName.MatchString(name) {
		p.add(path, "model name must match %s", modelName)
	}
	o := p.obj(path, v)
	if o == nil {
		return nil
	}
	m := &Model{Name: name, Fields: map[string]*Field{}, Process: Process{Enable: SideBoth, Sync: SyncNone}}
	for _, k := range o.keys {
		m.Fields[k] = p.field(join(path, k), k, o.vals[k], true)
		m.FieldNames = append(m.FieldNames, k)
	}
	p.implicitFields(path, m)
	p.keyFields(path, m)
	p.templates(path, m.Fields, m.FieldNames, nil)
	return m
}

// implicitFields adds the type field (a hidden, required string) and the
// timestamp fields (dates) that params ask for, unless declared; declared
// ones must have the right type.
func (p *parser) implicitFields(path string, m *Model) {
	ps := p.s.Params
	if f := m.Fields[ps.TypeField]; f == nil {
		m.add(&Field{Name: ps.TypeField, Type: TypeString, Required: true, Hidden: true})
	} else if f.Type != TypeString && f.Type != "" {
		p.add(join(join(path, f.Name), "type"), "the type field (params.typeField) must be a string")
	}
	var stamps []string
	if ps.Timestamps == TimestampsBoth || ps.Timestamps == TimestampsCreate {
		stamps = append(stamps, ps.CreatedField)
	}
	if ps.Timestamps == TimestampsBoth || ps.Timestamps == TimestampsUpdate {
		stamps = append(stamps, ps.UpdatedField)
	}
	for _, name := range stamps {
		if f := m.Fields[name]; f == nil {
			m.add(&Field{Name: name, Type: TypeDate})
		} else if f.Type != TypeDate && f.Type != "" {
			p.add(join(join(path, name), "type"), "a timestamp field (params.timestamps) must be a date")
		}
	}
}

func (m *Model) add(f *Field) {
	m.Fields[f.Name] = f
	m.FieldNames = append(m.FieldNames, f.Name)
}

// keyFields checks that the model has the primary index's hash and sort
// fields, as OneTable requires, and that every index attribute the model
// declares has a key type.
func (p *parser) keyFields(path string, m *Model) {
	if primary := p.s.Indexes["primary"]; primary != nil {
		for _, k := range []struct{ role, attr string }{{"hash", primary.Hash}, {"sort", primary.Sort}} {
			if k.attr != "" && m.Fields[k.attr] == nil {
				p.add(path, "field %q required by indexes.primary.%s", k.attr, k.role)
			}
		}
	}
	for _, name := range p.s.IndexNames {
		ix := p.s.Indexes[name]
		for _, attr := range []string{ix.Hash, ix.Sort} {
			f := m.Fields[attr]
			if attr == "" || f == nil {
				continue
			}
			switch f.Type {
			case TypeString, TypeNumber, TypeBinary, "":
			default:
				p.add(join(join(path, attr), "type"), "%s is a key of index %s: it must be a string, number or binary, not %s",
					attr, name, f.Type)
			}
		}
	}
}

// templates checks the value templates of one level of fields: their syntax,
// that each variable names a field of this level, of the enclosing model
// (outer) or the type field, and that templates do not depend on each other
// in a cycle. Nested schemas are checked in turn.
func (p *parser) templates(path string, fields map[string]*Field, names []string, outer map[string]*Field) {
	deps := map[string][]string{}
	for _, name := range names {
		f := fields[name]
		at := join(path, name)
		if f.Value != "" {
			vars, err := parseTemplate(f.Value)
			if err != nil {
				p.add(join(at, "value"), "%v", err)
			}
			for _, v := range vars {
				root := v.Root()
				switch {
				case fields[root] != nil:
					if fields[root].Value != "" {
						deps[name] = append(deps[name], root)
					}
				case outer[root] != nil, root == p.s.Params.TypeField:
				default:
					p.add(join(at, "value"), "${%s} names no field of the model", v.Name)
				}
			}
		}
		inner := outer
		if inner == nil {
			inner = fields
		}
		if f.Schema != nil {
			p.templates(join(at, "schema"), f.Schema, f.SchemaNames, inner)
		}
		if f.Items != nil && f.Items.Schema != nil {
			p.templates(join(at, "items.schema"), f.Items.Schema, f.Items.SchemaNames, inner)
		}
	}
	p.templateCycles(path, names, deps)
}

// templateCycles reports each cycle of templates once, at its first field.
func (p *parser) templateCycles(path string, names []string, deps map[string][]string) {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = active
		stack = append(stack, name)
		for _, d := range deps[name] {
			switch state[d] {
			case active:
				i := slices.Index(stack, d)
				cycle := append(append([]string(nil), stack[i:]...), d)
				p.add(join(join(path, cycle[0]), "value"), "template cycle %s", strings.Join(cycle, " -> "))
			case unseen:
				visit(d)
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, name := range names {
		if state[name] == unseen {
			visit(name)
		}
	}
}
