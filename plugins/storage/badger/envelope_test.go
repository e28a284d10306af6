package badger

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/iotod/iotod/pipeline"
)

func TestRecordEnvelopeRoundTrip(t *testing.T) {
	for _, rec := range []*pipeline.Record{
		{Key: pipeline.Key{PK: "a", SK: "b"}},
		{
			Key: pipeline.Key{PK: "a\x00", SK: ""}, Model: "User", Item: []byte(`{"x":1}`),
			Indexes: []pipeline.IndexEntry{{Index: "gs1", Hash: "h", Sort: "s"}, {Index: "gs2", Hash: "", Sort: "\x00"}},
			Version: pipeline.Version{Wall: 1732541234567, Counter: 1<<32 - 1, Origin: "site"}, Expires: 1732541299999,
		},
	} {
		got, err := decodeRecord(rec.Key, encodeRecord(rec))
		if err != nil {
			t.Fatalf("decode %s: %v", rec.Key, err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, rec)
		}
	}
}

func TestChangeEnvelopeRoundTrip(t *testing.T) {
	for _, ch := range []pipeline.Change{
		{Seq: 7, Model: "User", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "a", SK: "b"}, Origin: "o", Time: 5},
		{Seq: 8, Model: "User", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "a"}, Item: []byte{},
			Version: pipeline.Version{Wall: -1, Counter: 2, Origin: "x"}},
		{Seq: 9, Op: pipeline.OpUpsert, Item: []byte(`{"a":[1,2]}`), Time: 1732541234567},
	} {
		got, err := decodeChange(ch.Seq, encodeChange(&ch))
		if err != nil {
			t.Fatalf("decode %d: %v", ch.Seq, err)
		}
		if !reflect.DeepEqual(got, ch) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, ch)
		}
	}
}

// TestEnvelopeTruncated: every truncation of an envelope is an error, never
// a panic or a silently short value.
func TestEnvelopeTruncated(t *testing.T) {
	rec := &pipeline.Record{Key: pipeline.Key{PK: "a"}, Model: "M", Item: []byte("{}"),
		Indexes: []pipeline.IndexEntry{{Index: "i", Hash: "h", Sort: "s"}}, Version: pipeline.Version{Wall: 1, Origin: "o"}, Expires: 9}
	ch := &pipeline.Change{Model: "M", Op: pipeline.OpCreate, Item: []byte("{}"), Origin: "o", Time: 3}
	decodeRec := func(b []byte) error { _, err := decodeRecord(rec.Key, b); return err }
	decodeCh := func(b []byte) error { _, err := decodeChange(1, b); return err }
	for _, tc := range []struct {
		name   string
		b      []byte
		decode func([]byte) error
	}{{"record", encodeRecord(rec), decodeRec}, {"change", encodeChange(ch), decodeCh}} {
		for n := range len(tc.b) {
			if tc.decode(tc.b[:n]) == nil {
				t.Errorf("%s truncated to %d of %d bytes decoded", tc.name, n, len(tc.b))
			}
		}
		bad := bytes.Clone(tc.b)
		bad[0] = 99
		if tc.decode(bad) == nil {
			t.Errorf("%s with an unknown format decoded", tc.name)
		}
	}
}
