package db

import (
	"regexp"

	"github.com/iotod/iotod/schema"
)

// VersionAttr is the hidden attribute that holds an item's HLC version.
const VersionAttr = "_version"

// MaxItemSize is the largest stored item, DynamoDB's limit.
const MaxItemSize = 400 * 1024

// model is a schema model compiled for the write and read paths.
type model struct {
	*schema.Model
	isoDates     bool
	nulls        bool
	partial      bool
	typeField    string
	createdField string
	updatedField string
	timestamps   schema.Timestamps
	primary      *schema.Index
	// secondary lists the schema's other indexes; an item gets an entry in
	// those whose hash (and sort, if any) attributes it has.
	secondary []*schema.Index
	// templated lists fields with a value template, in declaration order.
	templated []*schema.Field
	// templates holds each templated field's template, compiled once.
	templates map[string]*template
	ttlField  string
	// emits says writes go to the outbox: the model replicates away from
	// this side.
	emits bool
	// accepts says changes replicated from the other side are taken: the
	// model exists on both sides and replicates towards this one.
	accepts bool
	// pkShape and skShape match the values the key templates can make
	// (nil: no template).
	pkShape, skShape *regexp.Regexp
}

// compileModel prepares sm for the write and read paths on side: a
// device's writes of up/both models go to the outbox, a cloud's writes of
// down/both models.
func compileModel(s *schema.Schema, sm *schema.Model, side schema.Side) *model {
	out, in := schema.SyncUp, schema.SyncDown
	if side == schema.SideCloud {
		out, in = schema.SyncDown, schema.SyncUp
	}
	m := &model{
		Model:        sm,
		isoDates:     s.Params.IsoDates,
		nulls:        s.Params.Nulls,
		partial:      s.Params.Partial,
		typeField:    s.Params.TypeField,
		createdField: s.Params.CreatedField,
		updatedField: s.Params.UpdatedField,
		timestamps:   s.Params.Timestamps,
		primary:      s.Indexes["primary"],
		emits:        sm.Process.Sync == out || sm.Process.Sync == schema.SyncBoth,
		accepts: (sm.Process.Sync == in || sm.Process.Sync == schema.SyncBoth) &&
			(sm.Process.Enable == schema.SideBoth || sm.Process.Enable == ""),
	}
	if m.typeField == "" {
		m.typeField = "_type"
	}
	for _, name := range s.IndexNames {
		if ix := s.Indexes[name]; name != "primary" {
			m.secondary = append(m.secondary, ix)
		}
	}
	if m.primary != nil {
		m.pkShape = templateShape(sm.Fields[m.primary.Hash])
		if m.primary.Sort != "" {
			m.skShape = templateShape(sm.Fields[m.primary.Sort])
		}
	}
	for _, name := range sm.FieldNames {
		f := sm.Fields[name]
		if f.Value != "" {
			m.templated = append(m.templated, f)
			if m.templates == nil {
				m.templates = map[string]*template{}
			}
			m.templates[name] = compileTemplate(f.Value)
		}
		if f.TTL {
			m.ttlField = name
		}
	}
	return m
}

// hashAttr and sortAttr name the key attributes of an index for this model;
// a local index shares the primary hash.
func (m *model) hashAttr(ix *schema.Index) string {
	if ix.Hash == "" {
		return m.primary.Hash
	}
	return ix.Hash
}

// keyValue computes a key attribute from props: its template if it has one
// (complete=false when an input is missing, with the prefix it could fill),
// else the attribute itself.
func (m *model) keyValue(attr string, props Item) (val string, complete, given bool) {
	if attr == "" {
		return "", true, false
	}
	if f := m.Fields[attr]; f != nil && f.Value != "" {
		v, ok := m.expand(f, props)
		if ok {
			return v, true, true
		}
		if raw, isStr := props[attr].(string); isStr {
			return raw, true, true
		}
		return v, false, true
	}
	v, ok := props[attr]
	if !ok || v == nil {
		return "", false, false
	}
	return scalarString(v), true, true
}

// expand fills f's value template from item.
func (m *model) expand(f *schema.Field, item Item) (string, bool) {
	if t := m.templates[f.Name]; t != nil {
		return t.expand(item)
	}
	return expand(f.Value, item)
}

// visible returns the attributes a caller sees: schema fields, without
// hidden ones unless asked, projected to fields if given. It copies item.
func (m *model) visible(item Item, p *Params) Item {
	out := make(Item, len(item))
	for k, v := range item {
		out[k] = v
	}
	return m.strip(out, p)
}

// strip is visible for an item the caller owns: it deletes in place.
func (m *model) strip(item Item, p *Params) Item {
	return project(m.hide(item, p), p)
}

// hide deletes from item the attributes the caller does not see.
func (m *model) hide(item Item, p *Params) Item {
	showHidden := p != nil && p.Hidden
	for k := range item {
		f := m.Fields[k]
		switch {
		case k == VersionAttr:
			if !showHidden {
				delete(item, k)
			}
		case f == nil:
			delete(item, k) // attribute dropped from the schema: kept in storage, not shown
		case f.Hidden && !showHidden:
			delete(item, k)
		}
	}
	return item
}

// project keeps the attributes p.Fields names, if it names any.
func project(item Item, p *Params) Item {
	if p != nil && len(p.Fields) > 0 {
		proj := make(Item, len(p.Fields))
		for _, name := range p.Fields {
			if v, ok := item[name]; ok {
				proj[name] = v
			}
		}
		return proj
	}
	return item
}
