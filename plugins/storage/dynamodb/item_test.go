package dynamodb

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestJSONRoundTrip: canonical JSON (names sorted, compact, as iotod's
// database writes items) comes back byte for byte through DynamoDB
// attribute values.
func TestJSONRoundTrip(t *testing.T) {
	for name, in := range map[string]string{
		"every type":        `{"a":"text","b":12,"c":true,"d":false,"e":null,"f":{"x":1},"g":[1,"two",null,true]}`,
		"empty object":      `{}`,
		"empty containers":  `{"l":[],"m":{}}`,
		"empty strings":     `{"s":"","t":[""],"u":{"v":""}}`,
		"big integer":       `{"n":12345678901234567890123456789012345678}`,
		"big negative":      `{"n":-99999999999999999999999999999999999999}`,
		"max exponent":      `{"n":9.9999999999999999999999999999999999999e125}`,
		"small":             `{"n":1e-130}`,
		"small fraction":    `{"n":0.000000000000000000000000000000000000001}`,
		"exact decimal":     `{"n":0.1,"o":1.23456789012345678901234567890123456}`,
		"float text kept":   `{"n":1.50,"o":1E3,"p":-0,"q":2e+5}`,
		"int64 overflow":    `{"n":9223372036854775808}`,
		"nested":            `{"a":{"b":{"c":[{"d":[1,[2,[3,{"e":"deep"}]]]}]}}}`,
		"list of maps":      `{"l":[{"a":1},{"b":2},{}]}`,
		"unicode":           `{"emoji":"🛰️ ok","han":"设备","mixed":"naïve café","rtl":"שלום"}`,
		"unicode names":     `{"é":1,"设备":2,"🛰":3}`,
		"escapes":           `{"s":"quote \" backslash \\ newline \n tab \t nul \u0000 \u001f"}`,
		"html escaped":      `{"s":"\u003cb\u003e \u0026 \u003c/b\u003e"}`,
		"line separators":   `{"s":"a\u2028b\u2029c"}`,
		"onetable item":     `{"_type":"Status","_version":"0001732541234567.00000003.dev-1","created":"2024-11-25T13:27:14.567Z","deviceId":"dev-1","expires":1732544834,"gs1pk":"device#dev-1","gs1sk":"status#01J","id":"01J","pk":"status#01J","sk":"status#","temp":21.5,"updated":"2024-11-25T13:27:14.567Z"}`,
		"numbers in arrays": `{"l":[0,-1,1.5,1e100,-1e-100]}`,
	} {
		t.Run(name, func(t *testing.T) {
			attrs, err := jsonToAttrs([]byte(in))
			if err != nil {
				t.Fatalf("to attributes: %v", err)
			}
			out, err := attrsToJSON(attrs, nil)
			if err != nil {
				t.Fatalf("to JSON: %v", err)
			}
			if string(out) != in {
				t.Fatalf("round trip:\n got %s\nwant %s", out, in)
			}
		})
	}
}

// TestJSONToAttrTypes: each JSON type becomes its DynamoDB type, numbers
// keep their text.
func TestJSONToAttrTypes(t *testing.T) {
	in := `{"s":"x","n":123456789012345678901234567890.123456,"t":true,"z":null,"m":{"k":-1e-5},"l":["a",2]}`
	attrs, err := jsonToAttrs([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]types.AttributeValue{
		"s": &types.AttributeValueMemberS{Value: "x"},
		"n": &types.AttributeValueMemberN{Value: "123456789012345678901234567890.123456"},
		"t": &types.AttributeValueMemberBOOL{Value: true},
		"z": &types.AttributeValueMemberNULL{Value: true},
		"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": &types.AttributeValueMemberN{Value: "-1e-5"}}},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberS{Value: "a"}, &types.AttributeValueMemberN{Value: "2"}}},
	}
	if !reflect.DeepEqual(attrs, want) {
		t.Fatalf("attributes:\n got %#v\nwant %#v", attrs, want)
	}
}

// TestJSONNormalised: JSON that is not canonical comes back canonical:
// names sorted, duplicates resolved to the last, no spaces, HTML escaped.
func TestJSONNormalised(t *testing.T) {
	for in, want := range map[string]string{
		` { "b" : 1 , "a" : [ 1 , 2 ] } `: `{"a":[1,2],"b":1}`,
		`{"a":1,"a":2}`:                   `{"a":2}`,
		`{"s":"<&>"}`:                     `{"s":"\u003c\u0026\u003e"}`,
		`{"s":"\u00e9"}`:                  `{"s":"é"}`,
	} {
		attrs, err := jsonToAttrs([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out, err := attrsToJSON(attrs, nil)
		if err != nil || string(out) != want {
			t.Errorf("%s: got %s, %v; want %s", in, out, err, want)
		}
	}
}

func TestJSONRefused(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 34) + "1" + strings.Repeat("}", 34)
	okDeep := strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33)
	if _, err := jsonToAttrs([]byte(okDeep)); err != nil {
		t.Fatalf("32 nested levels: %v", err)
	}
	for in, want := range map[string]string{
		``:             "not JSON",
		`[1]`:          "not a JSON object",
		`"s"`:          "not a JSON object",
		`{"a":1} {}`:   "data after the object",
		`{"a":1`:       "not JSON",
		`{"a":}`:       "not JSON",
		`{"":1}`:       "empty attribute names",
		`{"m":{"":1}}`: "empty attribute names",
		deep:           "nested deeper than DynamoDB's 32 levels",
		`{"n":123456789012345678901234567890123456789}`:  "39 significant digits",
		`{"n":1.00000000000000000000000000000000000001}`: "39 significant digits",
		`{"n":1e126}`:           "out of DynamoDB's range",
		`{"n":-1e126}`:          "out of DynamoDB's range",
		`{"n":1e-131}`:          "out of DynamoDB's range",
		`{"n":1e99999999999}`:   "out of DynamoDB's range",
		`{"l":[1,{"n":1e200}]}`: `attribute "l"[1]."n": number 1e200`,
	} {
		_, err := jsonToAttrs([]byte(in))
		var ev *errValue
		if err == nil || !errors.As(err, &ev) || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40s: got %v, want an error with %q", in, err, want)
		}
	}
}

func TestCheckNumber(t *testing.T) {
	for _, ok := range []string{"0", "-0", "0.000", "0e999999", "100000000000000000000000000000000000000000000000", "1e125", "9.9999999999999999999999999999999999999e125", "1e-130", "12.5e-3"} {
		if err := checkNumber(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"1e126", "10e125", "0.1e-130", "1234567890123456789012345678901234567891", "abc", "1.2.3"} {
		if err := checkNumber(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestNumberHelpers(t *testing.T) {
	if compareNumbers("10", "9") <= 0 || compareNumbers("1e3", "1000") != 0 || compareNumbers("-1.5", "-1.25") >= 0 {
		t.Fatal("compareNumbers orders by text, not value")
	}
	for in, want := range map[string]int64{"1732544834": 1732544834, "1732544834.9": 1732544834, "-1.5": -2, "0": 0, "1e3": 1000} {
		if got, ok := numberSeconds(in); !ok || got != want {
			t.Errorf("numberSeconds(%s) = %d, %v; want %d", in, got, ok, want)
		}
	}
	if _, ok := numberSeconds("1e30"); ok {
		t.Error("numberSeconds(1e30) beyond int64 accepted")
	}
}

// TestAttrsToJSONFromOthers: attribute types iotod never writes but
// OneTable or the SDK may (sets, binary) read as JSON arrays and base64.
func TestAttrsToJSONFromOthers(t *testing.T) {
	attrs := map[string]types.AttributeValue{
		"ss": &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"ns": &types.AttributeValueMemberNS{Value: []string{"1", "2.5"}},
		"b":  &types.AttributeValueMemberB{Value: []byte{0, 1, 0xff}},
		"bs": &types.AttributeValueMemberBS{Value: [][]byte{{1}, {2}}},
	}
	out, err := attrsToJSON(attrs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"b":"AAH/","bs":["AQ==","Ag=="],"ns":[1,2.5],"ss":["a","b"]}`; string(out) != want {
		t.Fatalf("got %s, want %s", out, want)
	}
}
