package schema

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// typeNames maps lower-cased type names, OneTable's and the JS constructor
// names (String, Buffer, ...), to types.
var typeNames = map[string]Type{
	"string": TypeString, "number": TypeNumber, "boolean": TypeBoolean, "date": TypeDate,
	"object": TypeObject, "array": TypeArray, "binary": TypeBinary, "buffer": TypeBinary, "set": TypeSet,
}

// ignoredFieldProps are OneTable field properties accepted but not acted
// on by the device.
var ignoredFieldProps = map[string]bool{
	"crypt": true, "map": true, "encode": true, "filter": true, "reference": true, "scope": true,
	"timestamp": true, "notes": true, "readonly": true, "drop": true, "fixed": true, "nulls": true,
	"name": true,
}

// field parses one field definition. It always returns a Field (perhaps
// incomplete after a fault) so later checks see the name. top says the
// field belongs to a model rather than to a nested schema.
func (p *parser) field(path, name string, v any, top bool) *Field {
	f := &Field{Name: name}
	o := p.obj(path, v)
	if o == nil {
		return f
	}
	hiddenGiven := false
	for _, k := range o.keys {
		at, v := join(path, k), o.vals[k]
		switch k {
		case "type":
			f.Type = p.fieldType(at, v)
		case "required":
			f.Required = p.boolean(at, v)
		case "default":
			f.Default = plain(v)
		case "value":
			f.Value = p.str(at, v)
		case "generate":
			f.Generate, f.GenerateSize = p.generate(at, v)
		case "enum":
			if f.Enum = p.strings(at, v); len(f.Enum) == 0 {
				p.add(at, "must list at least one value")
			}
		case "validate":
			f.ValidateSource = p.str(at, v)
			if re, err := compileValidate(f.ValidateSource); err != nil {
				p.add(at, "%v", err)
			} else {
				f.Validate = re
			}
		case "hidden":
			f.Hidden, hiddenGiven = p.boolean(at, v), true
		case "ttl":
			f.TTL = p.boolean(at, v)
		case "partial":
			b := p.boolean(at, v)
			f.Partial = &b
		case "unique":
			f.Unique = p.boolean(at, v)
		case "isoDates":
			b := p.boolean(at, v)
			f.IsoDates = &b
		case "schema", "items":
			// After the loop: they depend on the type.
		case "uuid":
			p.add(at, "deprecated by OneTable: use generate: 'uuid' or 'ulid'")
		default:
			if !ignoredFieldProps[k] {
				p.add(at, "unknown field property")
			}
		}
	}
	if _, ok := o.get("type"); !ok {
		p.add(join(path, "type"), "required")
	}
	if !hiddenGiven {
		f.Hidden = f.Value != "" || (top && name == p.s.Params.TypeField)
	}
	p.nestedParts(path, f, o)
	p.checkField(path, f)
	return f
}

// nestedParts reads `schema` (object fields; on an array it describes the
// elements) and `items` (array elements). Items is named after its field
// with "[]" appended ("tags[]"); an array's `schema` becomes Items of type
// object with that schema.
func (p *parser) nestedParts(path string, f *Field, o *object) {
	sv, hasSchema := o.get("schema")
	iv, hasItems := o.get("items")
	if hasSchema {
		at := join(path, "schema")
		switch {
		case f.Type == TypeObject:
			f.Schema, f.SchemaNames = p.nested(at, sv)
		case f.Type == TypeArray && !hasItems:
			f.Items = &Field{Name: f.Name + "[]", Type: TypeObject}
			f.Items.Schema, f.Items.SchemaNames = p.nested(at, sv)
		case f.Type == TypeArray:
			p.add(at, "give the element schema in items, not beside it")
		case f.Type != "":
			p.add(at, "only object and array fields take a nested schema, not %s", f.Type)
		}
	}
	if hasItems {
		at := join(path, "items")
		if f.Type != TypeArray && f.Type != "" {
			p.add(at, "only array fields take items, not %s", f.Type)
			return
		}
		f.Items = p.field(at, f.Name+"[]", iv, false)
	}
}

// nested parses a nested schema: a map of field definitions.
func (p *parser) nested(path string, v any) (map[string]*Field, []string) {
	o := p.obj(path, v)
	if o == nil {
		return nil, nil
	}
	fields := make(map[string]*Field, len(o.keys))
	for _, k := range o.keys {
		fields[k] = p.field(join(path, k), k, o.vals[k], false)
	}
	return fields, append([]string(nil), o.keys...)
}

// checkField checks the properties that depend on the field's type.
func (p *parser) checkField(path string, f *Field) {
	if f.Type == "" {
		return
	}
	if f.Generate != "" && f.Type != TypeString {
		p.add(join(path, "generate"), "only string fields can be generated, not %s", f.Type)
	}
	if f.Enum != nil && f.Type != TypeString {
		p.add(join(path, "enum"), "only string fields take an enum, not %s", f.Type)
	}
	if f.TTL && f.Type != TypeDate && f.Type != TypeNumber {
		p.add(join(path, "ttl"), "a ttl field must be a date or number, not %s", f.Type)
	}
	if f.Default == nil {
		return
	}
	if !defaultFits(f.Type, f.Default) {
		p.add(join(path, "default"), "%s is not a %s", show(fromPlain(f.Default)), f.Type)
		return
	}
	if s, ok := f.Default.(string); ok && f.Enum != nil && !slices.Contains(f.Enum, s) {
		p.add(join(path, "default"), "%q is not one of the enum values %s", s, strings.Join(f.Enum, ", "))
	}
}

// defaultFits reports whether a default value suits the field type.
func defaultFits(t Type, v any) bool {
	switch v.(type) {
	case string:
		return t == TypeString || t == TypeDate || t == TypeBinary
	case float64:
		return t == TypeNumber || t == TypeDate
	case bool:
		return t == TypeBoolean
	case map[string]any:
		return t == TypeObject
	case []any:
		return t == TypeArray || t == TypeSet
	}
	return true
}

func (p *parser) fieldType(path string, v any) Type {
	s, ok := v.(string)
	if !ok {
		p.add(path, "must be a type name, not %s", show(v))
		return ""
	}
	t, ok := typeNames[strings.ToLower(s)]
	if !ok {
		p.add(path, "unknown type %q", s)
	}
	return t
}

// generate reads `generate`: 'ulid', 'uuid', 'uid', 'uid(N)' with
// 1 <= N <= 64, or true (ulid).
func (p *parser) generate(path string, v any) (string, int) {
	switch v {
	case true:
		return "ulid", 0
	case false:
		return "", 0
	case "ulid", "uuid":
		return v.(string), 0
	case "uid":
		return "uid", 10
	}
	if s, ok := v.(string); ok && strings.HasPrefix(s, "uid(") && strings.HasSuffix(s, ")") {
		n, err := strconv.Atoi(s[4 : len(s)-1])
		if err != nil || n < 1 || n > 64 {
			p.add(path, "%q: the uid size must be 1 to 64", s)
			return "", 0
		}
		return "uid", n
	}
	p.add(path, "%s is not one of ulid, uuid, uid, uid(N) or true", show(v))
	return "", 0
}

// compileValidate compiles a `validate` regular expression written as
// '/re/flags' or 're'. Flags i, m and s become (?i), (?m) and (?s); g, u, y
// and d mean nothing for a match and are dropped.
func compileValidate(src string) (*regexp.Regexp, error) {
	pattern, flags := src, ""
	if i := strings.LastIndexByte(src, '/'); len(src) > 1 && src[0] == '/' && i > 0 {
		pattern, flags = src[1:i], src[i+1:]
	}
	var mode string
	for _, c := range flags {
		switch c {
		case 'i', 'm', 's':
			if !strings.ContainsRune(mode, c) {
				mode += string(c)
			}
		case 'g', 'u', 'y', 'd':
		default:
			return nil, fmt.Errorf("regular expression %s: unknown flag %q", src, c)
		}
	}
	if mode != "" {
		pattern = "(?" + mode + ")" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("regular expression %s: %w", src, err)
	}
	return re, nil
}
