package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DescribeJSONError says in words why data, the JSON text of what (such
// as "the item"), did not decode: where it stops being JSON (line and
// column), or what kind of value it holds where another is wanted. Other
// errors are told as they are.
func DescribeJSONError(what string, data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn) && syn.Offset > 0 && int(syn.Offset) <= len(data):
		p := int(syn.Offset) - 1 // the offending character is the last one read
		for p > 0 && !utf8.RuneStart(data[p]) {
			p--
		}
		r, _ := utf8.DecodeRune(data[p:])
		return fmt.Sprintf("%s is not valid JSON: unexpected %s at %s", what, strconv.QuoteRune(r), JSONPosition(data, p))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%s is not valid JSON: it ends at %s before the value is complete", what, JSONPosition(data, len(data)))
	case errors.As(err, &typ):
		if typ.Field != "" {
			what = typ.Field + " in " + what
		}
		return fmt.Sprintf("%s must be %s, not %s", what, wantKind(typ.Type), gotKind(typ.Value))
	}
	return fmt.Sprintf("%s is not valid JSON: %v", what, err)
}

// JSONPosition is "line L, column C" (from 1, the column in characters)
// of the first character of data at or after byte offset p that is not
// JSON white space.
func JSONPosition(data []byte, p int) string {
	p += len(data[p:]) - len(bytes.TrimLeft(data[p:], " \t\r\n"))
	before := data[:p]
	start := strings.LastIndexByte(string(before), '\n') + 1
	return fmt.Sprintf("line %d, column %d", strings.Count(string(before), "\n")+1, utf8.RuneCount(before[start:])+1)
}

// wantKind names the JSON values a Go type takes.
func wantKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return wantKind(t.Elem())
	}
	return "a " + t.String()
}

// gotKind names the JSON value json.UnmarshalTypeError.Value describes.
func gotKind(v string) string {
	switch v {
	case "array":
		return "a list"
	case "object":
		return "an object"
	case "string", "number":
		return "a " + v
	case "bool":
		return "a boolean"
	}
	return v // "number 1.5": the number as written
}
