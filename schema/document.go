package schema

import (
	"reflect"
	"sort"
)

// object is a decoded mapping that keeps its keys in document order, so
// that models and fields keep the order they were declared in. Values are
// *object, []any, string, float64, bool or nil.
type object struct {
	keys []string
	vals map[string]any
}

func newObject() *object { return &object{vals: map[string]any{}} }

// set stores v at k; a new key goes last, an existing one keeps its place.
func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// remove deletes k.
func (o *object) remove(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			break
		}
	}
}

// merge returns base with over laid on top: over wins, objects merge
// deeply, any other value replaces. Neither input is changed.
func merge(base, over *object) *object {
	out := newObject()
	for _, k := range base.keys {
		out.set(k, base.vals[k])
	}
	for _, k := range over.keys {
		ov := over.vals[k]
		if bo, ok := out.vals[k].(*object); ok {
			if oo, ok := ov.(*object); ok {
				out.set(k, merge(bo, oo))
				continue
			}
		}
		out.set(k, ov)
	}
	return out
}

// plain turns a decoded value back into Go's usual JSON shapes
// (map[string]any and []any), for values handed to callers (defaults).
func plain(v any) any {
	switch t := v.(type) {
	case *object:
		m := make(map[string]any, len(t.keys))
		for _, k := range t.keys {
			m[k] = plain(t.vals[k])
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = plain(e)
		}
		return l
	}
	return v
}

// fromPlain turns a caller's map[string]any document into objects. Go maps
// have no order, so keys are taken sorted. Numbers of any Go kind become
// float64, as JSON decoding gives.
func fromPlain(v any) any {
	switch t := v.(type) {
	case *object:
		return t
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := newObject()
		for _, k := range keys {
			o.set(k, fromPlain(t[k]))
		}
		return o
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = fromPlain(e)
		}
		return l
	case []string:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = e
		}
		return l
	case nil, string, bool, float64:
		return t
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint())
	case reflect.Float32:
		return rv.Float()
	case reflect.Slice:
		l := make([]any, rv.Len())
		for i := range l {
			l[i] = fromPlain(rv.Index(i).Interface())
		}
		return l
	}
	return v
}
