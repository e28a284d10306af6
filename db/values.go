package db

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// invalid builds a validation error naming the attribute path.
func invalid(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", pipeline.ErrInvalid, path, fmt.Sprintf(format, args...))
}

// toNumber normalises any Go or JSON number to json.Number.
func toNumber(v any) (json.Number, bool) {
	switch x := v.(type) {
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return "", false
		}
		return x, true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", false
		}
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64)), true
	case float32:
		return toNumber(float64(x))
	case int:
		return json.Number(strconv.FormatInt(int64(x), 10)), true
	case int8, int16, int32, int64:
		return json.Number(fmt.Sprint(x)), true
	case uint, uint8, uint16, uint32, uint64:
		return json.Number(fmt.Sprint(x)), true
	}
	return "", false
}

// castValue checks v against field f and returns it in its stored form:
// numbers as json.Number, dates as ISO strings or epoch ms (isoDates), TTL
// fields as epoch seconds, binary as base64 strings.
func (m *model) castValue(path string, f *schema.Field, v any, partial bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	if f.TTL {
		t, err := toTime(v)
		if err != nil {
			return nil, invalid(path, "ttl %s", err)
		}
		return json.Number(strconv.FormatInt(t.Unix(), 10)), nil
	}
	switch f.Type {
	case schema.TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, invalid(path, "want a string, got %s", typeName(v))
		}
		if len(f.Enum) > 0 && !slices.Contains(f.Enum, s) {
			return nil, invalid(path, "%s is not one of %v", pipeline.Quote(s), f.Enum)
		}
		if f.Validate != nil && !f.Validate.MatchString(s) {
			return nil, invalid(path, "%s does not match %s", pipeline.Quote(s), f.ValidateSource)
		}
		return s, nil
	case schema.TypeNumber:
		if jn, isNum := v.(json.Number); isNum {
			if err := checkNumber(string(jn)); err != nil {
				return nil, invalid(path, "%v", err)
			}
		}
		n, ok := toNumber(v)
		if !ok {
			return nil, invalid(path, "want a number, got %s", typeName(v))
		}
		if err := checkNumber(string(n)); err != nil {
			return nil, invalid(path, "%v", err)
		}
		return n, nil
	case schema.TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, invalid(path, "want a boolean, got %s", typeName(v))
		}
		return b, nil
	case schema.TypeDate:
		t, err := toTime(v)
		if err != nil {
			return nil, invalid(path, "%s", err)
		}
		return m.dateValue(f, t), nil
	case schema.TypeBinary:
		s, ok := v.(string)
		if !ok {
			if raw, isBytes := v.([]byte); isBytes {
				return base64.StdEncoding.EncodeToString(raw), nil
			}
			return nil, invalid(path, "want base64 binary, got %s", typeName(v))
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return nil, invalid(path, "not base64: %v", err)
		}
		return s, nil
	case schema.TypeObject:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, invalid(path, "want an object, got %s", typeName(v))
		}
		if f.Schema == nil {
			return obj, nil
		}
		return m.castObject(path, f.Schema, obj, partial)
	case schema.TypeArray, schema.TypeSet:
		arr, ok := v.([]any)
		if !ok {
			return nil, invalid(path, "want an array, got %s", typeName(v))
		}
		if f.Items == nil {
			return arr, nil
		}
		out := make([]any, len(arr))
		for i, el := range arr {
			c, err := m.castValue(fmt.Sprintf("%s[%d]", path, i), f.Items, el, false)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return v, nil
}

// castObject checks a nested object against its schema. Unknown nested
// attributes are errors; required ones must be present unless partial.
func (m *model) castObject(path string, fields map[string]*schema.Field, obj map[string]any, partial bool) (map[string]any, error) {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		f, ok := fields[k]
		if !ok {
			return nil, invalid(path+"."+k, "unknown attribute")
		}
		c, err := m.castValue(path+"."+k, f, v, partial)
		if err != nil {
			return nil, err
		}
		if c != nil || m.nulls {
			out[k] = c
		}
	}
	if !partial {
		for name, f := range fields {
			if _, ok := out[name]; !ok && f.Default != nil {
				out[name] = f.Default
			}
			if _, ok := out[name]; f.Required && !ok {
				return nil, invalid(path+"."+name, "required")
			}
		}
	}
	return out, nil
}

func (m *model) dateValue(f *schema.Field, t time.Time) any {
	iso := m.isoDates
	if f.IsoDates != nil {
		iso = *f.IsoDates
	}
	if iso {
		return t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return json.Number(strconv.FormatInt(t.UnixMilli(), 10))
}

// toTime reads a date given as an ISO 8601 / RFC 3339 string, epoch
// milliseconds, or epoch seconds (numbers below 1e11).
func toTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z", "2006-01-02"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("%q is not an ISO 8601 date", x)
	}
	n, ok := toNumber(v)
	if !ok {
		return time.Time{}, fmt.Errorf("want a date, got %s", typeName(v))
	}
	f, _ := n.Float64()
	if math.Abs(f) < 1e11 {
		return time.UnixMilli(int64(f * 1000)), nil
	}
	return time.UnixMilli(int64(f)), nil
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case nil:
		return "null"
	}
	if _, ok := toNumber(v); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
