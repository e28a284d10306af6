package schema

import "strings"

// ignoredProcessKeys are Ioto process keys accepted but not acted on here.
var ignoredProcessKeys = map[string]bool{
	"mem": true, "delay": true, "period": true, "metrics": true, "notify": true, "show": true, "actions": true,
}

// process reads the per-model replication rules, then checks that every
// model that syncs on the device has an updated field to order changes by.
func (p *parser) process(doc *object) {
	raw, ok := doc.get("process")
	if !ok {
		return
	}
	o := p.obj("process", raw)
	if o == nil {
		return
	}
	declared := map[string]bool{}
	if mo, ok := doc.vals["models"].(*object); ok {
		for _, name := range mo.keys {
			declared[name] = true
		}
	}
	for _, name := range o.keys {
		path := join("process", name)
		if !declared[name] {
			p.add(path, "no model %q in models", name)
		}
		pr, ok := p.processEntry(path, o.vals[name])
		if m := p.s.Models[name]; ok && m != nil {
			m.Process = pr
		}
	}
	for _, name := range o.keys {
		m := p.s.Models[name]
		if m == nil || m.Process.Sync == SyncNone || m.Process.Enable == SideCloud {
			continue
		}
		if f := m.Fields[p.s.Params.UpdatedField]; f == nil {
			p.add(join(join("process", name), "sync"), "a synced model needs an %q field: declare it or set params.timestamps",
				p.s.Params.UpdatedField)
		}
	}
}

func (p *parser) processEntry(path string, v any) (Process, bool) {
	pr := Process{Enable: SideBoth, Sync: SyncNone}
	o := p.obj(path, v)
	if o == nil {
		return pr, false
	}
	for _, k := range o.keys {
		at, v := join(path, k), o.vals[k]
		switch k {
		case "enable":
			pr.Enable = Side(p.oneOf(at, v, string(SideBoth), string(SideCloud), string(SideDevice), string(SideBoth)))
		case "sync":
			pr.Sync = Direction(p.oneOf(at, v, string(SyncNone), string(SyncUp), string(SyncDown), string(SyncBoth), string(SyncNone)))
		default:
			if !ignoredProcessKeys[k] {
				p.add(at, "unknown process property (want enable, sync, mem, delay, period, metrics, notify, show or actions)")
			}
		}
	}
	return pr, true
}

// oneOf checks that v is one of the choices; def after a fault.
func (p *parser) oneOf(path string, v any, def string, choices ...string) string {
	if s, ok := v.(string); ok {
		for _, c := range choices {
			if s == c {
				return s
			}
		}
	}
	p.add(path, "%s is not one of %s", show(v), strings.Join(choices, ", "))
	return def
}
