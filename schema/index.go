package schema

import (
	"sort"
)

// Index.Project values. ProjectInclude means the attributes listed in
// Index.ProjectAttrs (OneTable's `project: [attrs]`).
const (
	ProjectAll     = "all"
	ProjectKeys    = "keys"
	ProjectInclude = "include"
)

// indexes reads the index map: primary is required and needs a hash; any
// other index is a GSI (hash required) unless `type: 'local'` (an LSI: sort
// required, hash absent or the primary's).
func (p *parser) indexes(doc *object) {
	raw, ok := doc.get("indexes")
	if !ok {
		p.add("indexes", "required")
		return
	}
	o := p.obj("indexes", raw)
	if o == nil {
		return
	}
	if _, ok := o.get("primary"); !ok {
		p.add("indexes.primary", "required")
	}
	// The primary goes first: LSIs check their hash against it.
	names := append([]string(nil), o.keys...)
	sort.SliceStable(names, func(i, j int) bool { return names[i] == "primary" && names[j] != "primary" })
	for _, name := range names {
		if ix := p.index(name, o.vals[name]); ix != nil {
			p.s.Indexes[name] = ix
		}
	}
	rest := make([]string, 0, len(p.s.Indexes))
	for name := range p.s.Indexes {
		if name != "primary" {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	if _, ok := p.s.Indexes["primary"]; ok {
		p.s.IndexNames = append([]string{"primary"}, rest...)
	} else {
		p.s.IndexNames = rest
	}
}

func (p *parser) index(name string, v any) *Index {
	path := join("indexes", name)
	o := p.obj(path, v)
	if o == nil {
		return nil
	}
	ix := &Index{Name: name, Project: ProjectAll}
	for _, k := range o.keys {
		at, v := join(path, k), o.vals[k]
		switch k {
		case "hash":
			ix.Hash = p.name(at, v, "")
		case "sort":
			ix.Sort = p.name(at, v, "")
		case "type":
			switch v {
			case "local":
				ix.Local = true
			case "global":
			default:
				p.add(at, "%s is not one of local, global", show(v))
			}
		case "project":
			p.project(at, v, ix)
		case "follow":
			// Re-fetching after a keys-only GSI hit: nothing to do locally.
		default:
			p.add(at, "unknown index property")
		}
	}
	primary := p.s.Indexes["primary"]
	switch {
	case name == "primary" && ix.Local:
		p.add(join(path, "type"), "the primary index cannot be local")
	case name == "primary" || !ix.Local:
		if _, ok := o.get("hash"); !ok {
			p.add(join(path, "hash"), "required")
		}
	default: // LSI
		if _, ok := o.get("sort"); !ok {
			p.add(join(path, "sort"), "required for a local index")
		}
		if ix.Hash != "" && primary != nil && ix.Hash != primary.Hash {
			p.add(join(path, "hash"), "a local index must use the primary hash %q, not %q", primary.Hash, ix.Hash)
		}
		ix.Hash = ""
	}
	return ix
}

func (p *parser) project(path string, v any, ix *Index) {
	switch t := v.(type) {
	case string:
		if t != ProjectAll && t != ProjectKeys {
			p.add(path, "%q is not one of all, keys, or a list of attributes", t)
			return
		}
		ix.Project = t
	case []any:
		ix.Project = ProjectInclude
		ix.ProjectAttrs = p.strings(path, v)
	default:
		p.add(path, "must be 'all', 'keys' or a list of attributes, not %s", show(v))
	}
}
