package db

import (
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/oklog/ulid/v2"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// prepared is a write checked against the schema, before it touches
// storage: its attributes cast to their stored form and its primary key.
type prepared struct {
	m   *model
	op  pipeline.Op
	p   *Params
	in  Item
	key pipeline.Key
}

// prepare validates props for op. It reads no storage, so a transaction
// that retries does not redo it.
func (d *DB) prepare(m *model, op pipeline.Op, props Item, p *Params) (*prepared, error) {
	if p == nil {
		p = &Params{}
	}
	in := Item{}
	for k, v := range d.blendContext(m, props) {
		path := m.Name + "." + k
		switch {
		case k == m.typeField:
			if s, ok := v.(string); !ok || s != m.Name {
				return nil, invalid(path, "must be %q when given", m.Name)
			}
			continue
		case k == VersionAttr:
			return nil, invalid(path, "is set by iotod, not by callers")
		}
		f, ok := m.Fields[k]
		if !ok {
			return nil, invalid(path, "unknown attribute (the model declares %s)", strings.Join(m.FieldNames, ", "))
		}
		if v == nil {
			if op == pipeline.OpCreate && f.Required {
				return nil, invalid(path, "required")
			}
			in[k] = nil // update: removes the attribute
			continue
		}
		if f.Value != "" {
			// A templated attribute given by value is kept as given only
			// when its template cannot be filled (addressing by raw key).
			s, isStr := v.(string)
			if !isStr {
				return nil, invalid(path, "want a string, got %s", typeName(v))
			}
			in[k] = s
			continue
		}
		c, err := m.castValue(path, f, v, op != pipeline.OpCreate && m.partialFor(f, p))
		if err != nil {
			return nil, err
		}
		in[k] = c
	}
	if op == pipeline.OpCreate {
		if err := m.generate(in); err != nil {
			return nil, err
		}
	}
	key, missing := m.primaryKey(in)
	if len(missing) > 0 {
		return nil, invalid(m.Name, "missing key attributes: %s", strings.Join(missing, ", "))
	}
	// A key every site and cloud store can hold: the same bounds the
	// receiving side checks.
	if err := pipeline.ValidText(key.PK, pipeline.MaxPKLen); err != nil {
		return nil, invalid(m.Name+"."+m.primary.Hash, "%v", err)
	}
	if err := pipeline.ValidText(key.SK, pipeline.MaxSKLen); err != nil {
		return nil, invalid(m.Name+"."+m.primary.Sort, "%v", err)
	}
	return &prepared{m: m, op: op, p: p, in: in, key: key}, nil
}

// primaryKey computes pk and sk; missing lists the inputs it lacks.
func (m *model) primaryKey(in Item) (pipeline.Key, []string) {
	var key pipeline.Key
	var missing []string
	for _, part := range []struct {
		attr string
		dst  *string
	}{{m.primary.Hash, &key.PK}, {m.primary.Sort, &key.SK}} {
		if part.attr == "" {
			continue
		}
		v, complete, _ := m.keyValue(part.attr, in)
		if !complete {
			missing = append(missing, m.missingInputs(part.attr, in)...)
			continue
		}
		*part.dst = v
	}
	slices.Sort(missing)
	return key, slices.Compact(missing)
}

// missingInputs names what a key attribute still needs.
func (m *model) missingInputs(attr string, in Item) []string {
	f := m.Fields[attr]
	if f == nil || f.Value == "" {
		return []string{attr}
	}
	var out []string
	for _, v := range templateVars(f.Value) {
		if x, ok := lookup(in, v); !ok || x == nil {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		out = []string{attr}
	}
	return out
}

// generate fills missing `generate` attributes.
func (m *model) generate(in Item) error {
	for _, name := range m.FieldNames {
		f := m.Fields[name]
		if f.Generate == "" || in[name] != nil {
			continue
		}
		v, err := generateValue(f)
		if err != nil {
			return fmt.Errorf("%s.%s: generate: %w", m.Name, name, err)
		}
		in[name] = v
	}
	return nil
}

const uidAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func generateValue(f *schema.Field) (string, error) {
	switch f.Generate {
	case "ulid":
		return ulid.Make().String(), nil
	case "uuid":
		return uuid.NewString(), nil
	case "uid":
		n := f.GenerateSize
		if n <= 0 {
			n = 10
		}
		buf := make([]byte, n)
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for i, b := range buf {
			buf[i] = uidAlphabet[int(b)%len(uidAlphabet)]
		}
		return string(buf), nil
	}
	return "", fmt.Errorf("unknown generator %q", f.Generate)
}

// partialFor says whether an update of nested object f merges (true) or
// replaces (false).
func (m *model) partialFor(f *schema.Field, p *Params) bool {
	if p != nil && p.Partial != nil {
		return *p.Partial
	}
	if f.Partial != nil {
		return *f.Partial
	}
	return m.partial
}

// merge applies in over old for an update: top-level attributes replace,
// nested objects merge when partial, nil removes an attribute.
func (m *model) merge(old, in Item, p *Params) Item {
	out := maps.Clone(old)
	for k, v := range in {
		if v == nil && !m.nulls {
			delete(out, k)
			continue
		}
		f := m.Fields[k]
		if f != nil && f.Type == schema.TypeObject && m.partialFor(f, p) {
			if nv, ok := v.(map[string]any); ok {
				if ov, ok := out[k].(map[string]any); ok {
					out[k] = deepMerge(ov, nv)
					continue
				}
			}
		}
		out[k] = v
	}
	return out
}

func deepMerge(old, in map[string]any) map[string]any {
	out := maps.Clone(old)
	for k, v := range in {
		nv, nok := v.(map[string]any)
		ov, ook := out[k].(map[string]any)
		switch {
		case v == nil:
			delete(out, k)
		case nok && ook:
			out[k] = deepMerge(ov, nv)
		default:
			out[k] = v
		}
	}
	return out
}
