package where

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// kind is a DynamoDB type as far as evaluation cares.
type kind uint8

const (
	kInvalid kind = iota // a Go type with no DynamoDB equivalent
	kNull
	kBool
	kNum
	kStr
	kBin
	kList
	kMap
)

// number is an integer held exactly, or a float.
type number struct {
	i     int64
	f     float64
	isInt bool
}

// val is a value classified for evaluation. It is passed by value so that
// comparing scalars does not allocate.
type val struct {
	k    kind
	t    bool
	n    number
	s    string
	b    []byte
	list []any
	m    map[string]any
}

// toVal classifies a Go value as an item or substitution holds it.
func toVal(v any) val {
	switch x := v.(type) {
	case nil:
		return val{k: kNull}
	case bool:
		return val{k: kBool, t: x}
	case string:
		return val{k: kStr, s: x}
	case float64:
		return numVal(number{f: x})
	case int:
		return numVal(number{i: int64(x), isInt: true})
	case int64:
		return numVal(number{i: x, isInt: true})
	case json.Number:
		n, ok := parseNumber(string(x))
		if !ok {
			return val{}
		}
		return numVal(n)
	case []any:
		return val{k: kList, list: x}
	case map[string]any:
		return val{k: kMap, m: x}
	case []byte:
		return val{k: kBin, b: x}
	}
	return reflectVal(reflect.ValueOf(v))
}

func numVal(n number) val { return val{k: kNum, n: n} }

// reflectVal classifies the less common types: other int and float sizes,
// named types, typed slices and maps. Slices and maps are copied into
// []any and map[string]any.
func reflectVal(rv reflect.Value) val {
	switch rv.Kind() {
	case reflect.Bool:
		return val{k: kBool, t: rv.Bool()}
	case reflect.String:
		return val{k: kStr, s: rv.String()}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return numVal(number{i: rv.Int(), isInt: true})
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return numVal(number{f: float64(u)})
		}
		return numVal(number{i: int64(u), isInt: true})
	case reflect.Float32, reflect.Float64:
		return numVal(number{f: rv.Float()})
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			return val{k: kBin, b: rv.Bytes()}
		}
		list := make([]any, rv.Len())
		for i := range list {
			list[i] = rv.Index(i).Interface()
		}
		return val{k: kList, list: list}
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return val{}
		}
		m := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			m[iter.Key().String()] = iter.Value().Interface()
		}
		return val{k: kMap, m: m}
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return val{k: kNull}
		}
		return toVal(rv.Elem().Interface())
	}
	return val{}
}

// parseNumber reads a decimal number: exactly as an int64 when it is one,
// else as a float64.
func parseNumber(s string) (number, bool) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return number{i: i, isInt: true}, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeErr(err) {
		return number{}, false
	}
	return number{f: f}, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// cmpNumber orders two numbers; ok is false when either is NaN.
func cmpNumber(a, b number) (int, bool) {
	switch {
	case a.isInt && b.isInt:
		return cmp3(a.i, b.i), true
	case a.isInt:
		c, ok := cmpIntFloat(a.i, b.f)
		return c, ok
	case b.isInt:
		c, ok := cmpIntFloat(b.i, a.f)
		return -c, ok
	}
	if math.IsNaN(a.f) || math.IsNaN(b.f) {
		return 0, false
	}
	return cmp3(a.f, b.f), true
}

// cmpIntFloat orders i against f exactly, without rounding i to a float.
func cmpIntFloat(i int64, f float64) (int, bool) {
	switch {
	case math.IsNaN(f):
		return 0, false
	case f >= math.MaxInt64: // 2^63: above every int64
		return -1, true
	case f < math.MinInt64:
		return 1, true
	}
	t := math.Trunc(f)
	if c := cmp3(i, int64(t)); c != 0 {
		return c, true
	}
	return cmp3(0, f-t), true
}

func cmp3[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// order compares a and b for <, <=, >, >= and BETWEEN: both numbers, both
// strings or both binary. ok is false for any other pair.
func order(a, b val) (int, bool) {
	if a.k != b.k {
		return 0, false
	}
	switch a.k {
	case kNum:
		return cmpNumber(a.n, b.n)
	case kStr:
		return strings.Compare(a.s, b.s), true
	case kBin:
		return bytes.Compare(a.b, b.b), true
	}
	return 0, false
}

// equal is DynamoDB's =: same type and same value, deeply for lists and maps.
func equal(a, b val) bool {
	if a.k != b.k {
		return false
	}
	switch a.k {
	case kNull:
		return true
	case kBool:
		return a.t == b.t
	case kNum:
		c, ok := cmpNumber(a.n, b.n)
		return ok && c == 0
	case kStr:
		return a.s == b.s
	case kBin:
		return bytes.Equal(a.b, b.b)
	case kList:
		if len(a.list) != len(b.list) {
			return false
		}
		for i := range a.list {
			if !equal(toVal(a.list[i]), toVal(b.list[i])) {
				return false
			}
		}
		return true
	case kMap:
		if len(a.m) != len(b.m) {
			return false
		}
		for k, av := range a.m {
			bv, ok := b.m[k]
			if !ok || !equal(toVal(av), toVal(bv)) {
				return false
			}
		}
		return true
	}
	return false
}

// typeName is the DynamoDB type name of v, "" when it has none.
func typeName(v val) string {
	return [...]string{kNull: "NULL", kBool: "BOOL", kNum: "N", kStr: "S", kBin: "B", kList: "L", kMap: "M", kInvalid: ""}[v.k]
}
