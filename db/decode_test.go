package db

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

var decodeCases = []string{
	`{}`,
	` { "a" : 1 , "b":"x" } `,
	`{"pk":"bench#p1","sk":"bench#0000000001","n":-12.5e+3,"z":0,"f":false,"t":true,"nil":null}`,
	`{"esc":"a\"b\\c\/d\u00e9\ud83d\ude00\n","ctl":"x"}`,
	`{"arr":[1,"two",[3],{"four":4},null,true],"obj":{"x":{"y":[]}},"e":[],"o":{}}`,
	`{"dup":1,"dup":2}`,
	`{"utf":"héllo ☃"}`,
	`{"big":123456789012345678901234567890,"neg":-0,"exp":1E5,"frac":0.000001}`,
}

var badDecodeCases = []string{
	``, `[]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1}x`, `{"a":01}`, `{"a":1.}`, `{"a":-}`,
	`{"a":1e}`, `{"a":tru}`, `{"a":"x}`, "{\"a\":\"\x01\"}", `{"a":[1,]}`, `{"a":[1 2]}`, `{a:1}`,
	`{"a":"\x"}`, `{"a":{"b":1}`,
}

// TestDecodeMatchesEncodingJSON checks the read path's decoder against
// encoding/json with UseNumber, which the stored items were written for.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, in := range decodeCases {
		want := map[string]any{}
		dec := json.NewDecoder(bytes.NewReader([]byte(in)))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&want), in)
		got, err := decodeItem([]byte(in))
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range badDecodeCases {
		_, err := decodeItem([]byte(in))
		require.Error(t, err, "%q", in)
		require.Error(t, json.Unmarshal([]byte(in), &map[string]any{}), "%q is valid JSON", in)
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range append(decodeCases, badDecodeCases...) {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if bytes.Equal(bytes.TrimSpace([]byte(in)), []byte("null")) {
			return // encoding/json takes null for an empty map; a stored item is never null
		}
		want := map[string]any{}
		werr := json.Unmarshal([]byte(in), &map[string]any{})
		if werr == nil {
			dec := json.NewDecoder(bytes.NewReader([]byte(in)))
			dec.UseNumber()
			require.NoError(t, dec.Decode(&want))
		}
		got, err := decodeItem([]byte(in))
		if (werr == nil) != (err == nil) {
			t.Fatalf("%q: encoding/json says %v, decodeItem %v", in, werr, err)
		}
		if err == nil && !bytes.Equal(mustJSON(t, want), mustJSON(t, got)) {
			t.Fatalf("%q: encoding/json %v, decodeItem %v", in, want, got)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
