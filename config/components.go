package config

import (
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/errs"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// The framework's own keys of storage and transport entries; every other
// key of an entry belongs to the plugin named by type.
var (
	storageKeys   = []string{"type", "side", "site", "read_cache"}
	transportKeys = []string{"type"}
)

// storageEntry decodes storage.NAME: {type, side, site, ...plugin keys}.
func (l *loader) storageEntry(name string, n *yaml.Node, path, site string) *StorageConfig {
	f, ok := l.entryFactory(n, path, pipeline.KindStorage)
	if !ok {
		return nil
	}
	s := &StorageConfig{Name: name, Side: schema.SideDevice, Site: site}
	if f != nil {
		s.Type = f.Type()
	}
	if v := l.str(mappingValue(n, "side"), path+".side"); v != "" {
		s.Side = schema.Side(v)
		l.oneOf(path+".side", v, string(schema.SideDevice), string(schema.SideCloud))
	}
	if v := l.str(mappingValue(n, "site"), path+".site"); v != "" {
		s.Site = v
		l.checkSite(path+".site", v)
	}
	if v := mappingValue(n, "read_cache"); v != nil {
		if v.Value == "off" || v.Value == "none" {
			s.ReadCache = -1
		} else {
			var size pipeline.ByteSize
			l.decode(v, path+".read_cache", &size)
			if size < 64<<10 || size > 1<<40 {
				l.report(path+".read_cache", "must be off, or between 64KB and 1TB, got %d bytes", int64(size))
			}
			s.ReadCache = int64(size)
		}
	}
	s.Factory, s.Config = f, l.pluginConfig(n, path, f, storageKeys)
	return s
}

// transportEntry decodes transports.NAME: {type, ...plugin keys}.
func (l *loader) transportEntry(name string, n *yaml.Node, path string) *TransportConfig {
	f, ok := l.entryFactory(n, path, pipeline.KindTransport)
	if !ok {
		return nil
	}
	t := &TransportConfig{Name: name, Factory: f}
	if f != nil {
		t.Type = f.Type()
	}
	t.Config = l.pluginConfig(n, path, f, transportKeys)
	return t
}

// entryFactory finds the factory named by the type key of entry n. ok is
// false when n is not a mapping; f is nil when the type is missing or
// unknown (reported).
func (l *loader) entryFactory(n *yaml.Node, path string, kind pipeline.Kind) (f pipeline.Factory, ok bool) {
	if !l.wantKind(n, yaml.MappingNode, path) {
		return nil, false
	}
	l.lines[path] = l.pos(n)
	tn := mappingValue(n, "type")
	typ := l.str(tn, path+".type")
	if typ == "" {
		if !l.failed[path+".type"] {
			l.report(path+".type", "is required (one of %s)", strings.Join(l.reg.Types(kind), ", "))
		}
		return nil, true
	}
	return l.lookup(tn, path+".type", kind, typ), true
}

// lookup finds the factory of kind/typ, reporting at n when there is none.
func (l *loader) lookup(n *yaml.Node, path string, kind pipeline.Kind, typ string) pipeline.Factory {
	if f, err := l.reg.Lookup(kind, typ); err == nil {
		return f
	}
	if o, ok := l.reg.OmittedType(kind, typ); ok {
		l.failNode(n, path, "%s", o)
		return nil
	}
	for _, other := range pipeline.Kinds {
		if _, err := l.reg.Lookup(other, typ); err == nil && other != kind {
			l.failNode(n, path, "%s is a %s, not a %s (%s types: %s)", typ, other, kind, kind, strings.Join(l.reg.Types(kind), ", "))
			return nil
		}
	}
	l.failNode(n, path, "unknown %s type %q (known: %s)", kind, typ, strings.Join(l.reg.Types(kind), ", "))
	return nil
}

// component decodes one item of a stages or triggers list: a one-key
// mapping `type[/name]: {config}`, or a bare `type[/name]`.
func (l *loader) component(n *yaml.Node, path string, kind pipeline.Kind) (ComponentConfig, bool) {
	var key, val *yaml.Node
	switch {
	case n.Kind == yaml.ScalarNode && !isNull(n):
		key = n
	case n.Kind == yaml.MappingNode && len(n.Content) == 2:
		key, val = n.Content[0], n.Content[1]
	default:
		l.failNode(n, path, "want one key, the %s's type[/name], such as - %s: {}", kind, firstOr(l.reg.Types(kind), "type"))
		return ComponentConfig{}, false
	}
	l.lines[path] = l.pos(key)
	id, err := pipeline.ParseID(key.Value)
	if err != nil {
		l.failNode(key, path, "%s", faultText(err))
		return ComponentConfig{}, false
	}
	p := join(path, id.String())
	l.lines[p] = l.pos(key)
	f := l.lookup(key, path, kind, id.Type)
	if f == nil {
		return ComponentConfig{}, false
	}
	c := ComponentConfig{ID: id, Factory: f}
	if val == nil {
		val = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: key.Line}
		l.origin[val] = l.origin[key]
	}
	c.Config = l.pluginConfig(val, p, f, nil)
	return c, true
}

// pluginConfig decodes the plugin keys of n (every key but the framework's
// own, which the caller checks) into f's default config and validates it.
// A nil f (an unknown type) leaves the plugin keys unchecked.
func (l *loader) pluginConfig(n *yaml.Node, path string, f pipeline.Factory, own []string) pipeline.Config {
	if f == nil {
		return nil
	}
	cfg := f.NewDefaultConfig()
	t := reflect.TypeOf(cfg)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		l.report(path, "%s %s: the plugin's default config is a %T, not a pointer to a struct", f.Kind(), f.Type(), cfg)
		return nil
	}
	if !isNull(n) {
		fields := yamlFields(t.Elem())
		known := slices.Sorted(slices.Values(append(sortedKeys(fields), own...)))
		l.checkMapping(n, path, func(key string) reflect.Type {
			if slices.Contains(own, key) {
				return handledType
			}
			return fields[key]
		}, known)
		if n.Kind == yaml.MappingNode {
			if err := l.pruned(n, path).Decode(cfg); err != nil {
				l.failNode(n, path, "%s", faultText(err))
			}
		}
	}
	l.faults(path, cfg.Validate())
	return cfg
}

// fieldFault is a Validate fault that names its field: "key: message".
var fieldFault = regexp.MustCompile(`^([A-Za-z0-9_][A-Za-z0-9_.\[\]/-]*): (.+)$`)

// faults reports each fault of a plugin config's Validate (one a line,
// as errors.Join writes them) at the key it names.
func (l *loader) faults(path string, err error) {
	if err == nil {
		return
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		line = faultText(plainError(line))
		if m := fieldFault.FindStringSubmatch(line); m != nil {
			l.report(join(path, m[1]), "%s", m[2])
			continue
		}
		l.report(path, "%s", line)
	}
}

// plainError is an error of a given text.
type plainError string

func (e plainError) Error() string { return string(e) }

// faultText is err's text without the "invalid: " its sentinel adds: in a
// config error every fault is invalid.
func faultText(err error) string {
	s := err.Error()
	for {
		t, ok := strings.CutPrefix(s, errs.Invalid.Error()+": ")
		if !ok {
			return s
		}
		s = t
	}
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}
