package main

import (
	"bytes"
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
)

// fieldDoc documents one key of a plugin's config, read from its struct
// by reflection: the yaml tag, the Go type, the default value and the
// `desc` tag.
type fieldDoc struct {
	Name    string
	Type    string
	Default string
	Desc    string
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	byteSizeType        = reflect.TypeFor[pipeline.ByteSize]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// configFields lists the keys of cfg, a pointer to a config struct, with
// cfg's values as the defaults. Nested structs give dotted keys.
func configFields(cfg pipeline.Config) []fieldDoc {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	return structFields(v, "")
}

func structFields(v reflect.Value, prefix string) []fieldDoc {
	var out []fieldDoc
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			out = append(out, structFields(fv, prefix)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if f.Type.Kind() == reflect.Struct && !isLeaf(f.Type) {
			out = append(out, structFields(fv, prefix+name+".")...)
			continue
		}
		out = append(out, fieldDoc{Name: prefix + name, Type: typeLabel(f.Type), Default: yamlValue(fv), Desc: f.Tag.Get("desc")})
	}
	return out
}

// isLeaf reports whether t is written as one value.
func isLeaf(t reflect.Type) bool {
	return t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// typeLabel names t as a config author sees it.
func typeLabel(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t == byteSizeType:
		return "size"
	case isLeaf(t):
		return strings.ToLower(t.Name())
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "list of " + typeLabel(t.Elem())
	case reflect.Map:
		return "map of " + typeLabel(t.Elem())
	case reflect.Pointer:
		return typeLabel(t.Elem())
	}
	return t.String()
}

// yamlValue writes v as YAML on one line.
func yamlValue(v reflect.Value) string {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(flowStyle(v.Interface())); err != nil {
		return fmt.Sprintf("%v", v.Interface())
	}
	return strings.TrimSpace(b.String())
}

// flowStyle makes lists and maps print on one line.
func flowStyle(v any) any {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return v
	}
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode {
		n.Style = yaml.FlowStyle
	}
	return &n
}

// sampleYAML is the default config of f placed where it goes in
// pipelines.yaml, with NAME for the names to choose.
func sampleYAML(f pipeline.Factory) (string, error) {
	var cfgNode yaml.Node
	if err := cfgNode.Encode(f.NewDefaultConfig()); err != nil {
		return "", fmt.Errorf("%s/%s: encode the default config: %w", f.Kind(), f.Type(), err)
	}
	if len(cfgNode.Content) == 0 {
		cfgNode.Style = yaml.FlowStyle
	}
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
	mapping := func(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }
	var doc *yaml.Node
	switch f.Kind() {
	case pipeline.KindStorage, pipeline.KindTransport:
		entry := mapping(append([]*yaml.Node{str("type"), str(f.Type())}, cfgNode.Content...)...)
		section := "storage"
		if f.Kind() == pipeline.KindTransport {
			section = "transports"
		}
		doc = mapping(str(section), mapping(str("NAME"), entry))
	default:
		list := "stages"
		if f.Kind() == pipeline.KindTrigger {
			list = "triggers"
		}
		item := mapping(str(f.Type()), &cfgNode)
		doc = mapping(str("pipelines"), mapping(str("NAME"), mapping(str(list), &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{item}})))
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return "", fmt.Errorf("%s/%s: write the sample: %w", f.Kind(), f.Type(), err)
	}
	return b.String(), nil
}
