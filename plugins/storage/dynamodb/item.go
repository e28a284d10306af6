package dynamodb

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Limits of DynamoDB attribute values.
const (
	// maxDepth is how deep maps and lists may nest in one attribute.
	maxDepth = 32
	// maxDigits is the precision of a DynamoDB number.
	maxDigits = 38
	// minExp and maxExp bound the decimal exponent of a non-zero number
	// (1E-130 to 9.99…E+125).
	minExp = -130
	maxExp = 125
)

// errValue is a JSON value DynamoDB cannot store. Callers wrap it with
// pipeline.ErrInvalid and the table and key.
type errValue struct {
	path string
	msg  string
}

func (e *errValue) Error() string {
	if e.path == "" {
		return e.msg
	}
	return "attribute " + e.path + ": " + e.msg
}

// jsonToAttrs converts the JSON text of an object into DynamoDB attributes:
// strings S, numbers N (their text, never through a float), booleans BOOL,
// null NULL, objects M and arrays L. Duplicate names keep the last value.
func jsonToAttrs(data []byte) (map[string]types.AttributeValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, &errValue{msg: "not JSON: " + err.Error()}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &errValue{msg: "not a JSON object"}
	}
	m, err := decodeObject(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &errValue{msg: "not JSON: data after the object"}
	}
	return m, nil
}

func decodeObject(dec *json.Decoder, path string, depth int) (map[string]types.AttributeValue, error) {
	m := make(map[string]types.AttributeValue)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, &errValue{path: path, msg: "not JSON: " + err.Error()}
		}
		name, ok := tok.(string)
		if !ok {
			return nil, &errValue{path: path, msg: "not JSON: object name is not a string"}
		}
		sub := joinPath(path, name)
		if name == "" {
			return nil, &errValue{path: sub, msg: "empty attribute names are not allowed in DynamoDB"}
		}
		v, err := decodeValue(dec, sub, depth)
		if err != nil {
			return nil, err
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, &errValue{path: path, msg: "not JSON: " + err.Error()}
	}
	return m, nil
}

func joinPath(path, name string) string {
	if path == "" {
		return strconv.Quote(name)
	}
	return path + "." + strconv.Quote(name)
}

func decodeValue(dec *json.Decoder, path string, depth int) (types.AttributeValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, &errValue{path: path, msg: "not JSON: " + err.Error()}
	}
	switch v := tok.(type) {
	case string:
		return &types.AttributeValueMemberS{Value: v}, nil
	case json.Number:
		if err := checkNumber(string(v)); err != nil {
			return nil, &errValue{path: path, msg: err.Error()}
		}
		return &types.AttributeValueMemberN{Value: string(v)}, nil
	case bool:
		return &types.AttributeValueMemberBOOL{Value: v}, nil
	case nil:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case json.Delim:
		if depth+1 > maxDepth {
			return nil, &errValue{path: path, msg: fmt.Sprintf("nested deeper than DynamoDB's %d levels", maxDepth)}
		}
		if v == '{' {
			m, err := decodeObject(dec, path, depth+1)
			if err != nil {
				return nil, err
			}
			return &types.AttributeValueMemberM{Value: m}, nil
		}
		l := []types.AttributeValue{}
		for i := 0; dec.More(); i++ {
			e, err := decodeValue(dec, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, e)
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, &errValue{path: path, msg: "not JSON: " + err.Error()}
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	}
	return nil, &errValue{path: path, msg: fmt.Sprintf("unexpected JSON token %v", tok)}
}

// checkNumber reports whether DynamoDB can store the JSON number s
// exactly: at most 38 significant digits, and a magnitude from 1E-130 to
// below 1E+126 (or zero).
func checkNumber(s string) error {
	digits, exp, err := splitNumber(s)
	if err != nil {
		return err
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return nil // zero
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	if len(trimmed) > maxDigits {
		return fmt.Errorf("number %s has %d significant digits; DynamoDB keeps at most %d", truncNum(s), len(trimmed), maxDigits)
	}
	if e := exp + int64(len(trimmed)) - 1; e < minExp || e > maxExp {
		return fmt.Errorf("number %s is out of DynamoDB's range (1E-130 to 9.99…E+125 in magnitude)", truncNum(s))
	}
	return nil
}

func truncNum(s string) string {
	if len(s) > 48 {
		return s[:45] + "…"
	}
	return s
}

// splitNumber reads a JSON number as its digits (integer and fraction
// run together) and the decimal exponent of the last digit.
func splitNumber(s string) (digits string, exp int64, err error) {
	t := strings.TrimPrefix(s, "-")
	mant, e, hasExp := strings.Cut(strings.ToLower(t), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" || strings.Trim(intPart+frac, "0123456789") != "" {
		return "", 0, fmt.Errorf("%q is not a number", truncNum(s))
	}
	if hasExp {
		exp, err = strconv.ParseInt(strings.TrimPrefix(e, "+"), 10, 64)
		if err != nil || exp > 1<<40 || exp < -(1<<40) {
			return "", 0, fmt.Errorf("number %s is out of DynamoDB's range (1E-130 to 9.99…E+125 in magnitude)", truncNum(s))
		}
	}
	return intPart + frac, exp - int64(len(frac)), nil
}

// attrsToJSON renders DynamoDB attributes as the JSON text of an object,
// with names sorted (as iotod's database writes items) and numbers as
// DynamoDB returns their text. Sets become arrays, binary base64 strings.
func attrsToJSON(attrs map[string]types.AttributeValue, skip func(name string) bool) ([]byte, error) {
	obj := make(map[string]any, len(attrs))
	for name, av := range attrs {
		if skip != nil && skip(name) {
			continue
		}
		v, err := toJSONValue(av)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", name, err)
		}
		obj[name] = v
	}
	return gojson.Marshal(obj)
}

func toJSONValue(av types.AttributeValue) (any, error) {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value, nil
	case *types.AttributeValueMemberN:
		return json.Number(v.Value), nil
	case *types.AttributeValueMemberBOOL:
		return v.Value, nil
	case *types.AttributeValueMemberNULL:
		return nil, nil
	case *types.AttributeValueMemberM:
		m := make(map[string]any, len(v.Value))
		for k, e := range v.Value {
			x, err := toJSONValue(e)
			if err != nil {
				return nil, err
			}
			m[k] = x
		}
		return m, nil
	case *types.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			x, err := toJSONValue(e)
			if err != nil {
				return nil, err
			}
			l[i] = x
		}
		return l, nil
	case *types.AttributeValueMemberSS:
		l := make([]any, len(v.Value))
		for i, s := range v.Value {
			l[i] = s
		}
		return l, nil
	case *types.AttributeValueMemberNS:
		l := make([]any, len(v.Value))
		for i, s := range v.Value {
			l[i] = json.Number(s)
		}
		return l, nil
	case *types.AttributeValueMemberB:
		return base64.StdEncoding.EncodeToString(v.Value), nil
	case *types.AttributeValueMemberBS:
		l := make([]any, len(v.Value))
		for i, b := range v.Value {
			l[i] = base64.StdEncoding.EncodeToString(b)
		}
		return l, nil
	}
	return nil, errors.New("unknown DynamoDB attribute type")
}

// compareNumbers orders two DynamoDB number texts by value.
func compareNumbers(a, b string) int {
	x, okA := new(big.Float).SetPrec(256).SetString(a)
	y, okB := new(big.Float).SetPrec(256).SetString(b)
	if !okA || !okB {
		return strings.Compare(a, b)
	}
	return x.Cmp(y)
}

// numberSeconds reads a DynamoDB number as whole seconds (cut towards
// minus infinity), as TTL attributes are. ok is false for a number that is
// not one or is beyond int64 range.
func numberSeconds(s string) (int64, bool) {
	f, ok := new(big.Float).SetPrec(256).SetString(s)
	if !ok || f.IsInf() {
		return 0, false
	}
	i, acc := f.Int64()
	if (i == math.MaxInt64 && acc == big.Below) || (i == math.MinInt64 && acc == big.Above) {
		return 0, false
	}
	if acc == big.Above { // negative with a fraction: Int64 cut towards zero
		i--
	}
	return i, true
}
