package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

func sampleChanges() []pipeline.Change {
	return []pipeline.Change{
		{Seq: 1, Model: "User", Op: pipeline.OpUpsert, Key: pipeline.Key{PK: "account#a", SK: "user#1"},
			Item:    json.RawMessage(`{"name":"Zoë \"z\"","n":1e300,"deep":{"a":[1,2,{}]}}`),
			Version: pipeline.Version{Wall: 1700000000000, Counter: 7, Origin: "dev-1"}, Origin: "dev-1", Time: 1700000000001},
		{Seq: 1 << 60, Model: "User", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "account#a", SK: "user#2"},
			Version: pipeline.Version{Wall: -1, Counter: 1<<32 - 1, Origin: "cloud"}, Origin: "cloud", Time: -5},
		{Seq: 3, Model: "Reading", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "r#" + strings.Repeat("x", 300)},
			Item: json.RawMessage{}, Version: pipeline.Version{Wall: 1, Origin: "dev-1"}, Origin: "dev-1"},
		{Seq: 4, Model: "Blob", Op: pipeline.OpUpdate, Key: pipeline.Key{PK: "b", SK: "c"},
			Item: json.RawMessage("not json at all \x00\xff"), Version: pipeline.Version{Wall: 2, Origin: "dev-1"}, Origin: "dev-1"},
	}
}

// Every message of the protocol comes back as it went, the changes'
// items byte for byte (JSON or not, none or empty), and the caller's
// message is left as it was.
func TestCodecRoundTrip(t *testing.T) {
	batch := func() pipeline.Batch {
		return pipeline.Batch{V: 1, ID: "b1", Kind: "catchup", Site: "dev-1", Changes: sampleChanges(), Before: "x", CatchUp: true, Count: 3}
	}
	tests := []struct {
		name string
		in   func() any // the message, built afresh each call
		out  any
	}{
		{"process request", func() any {
			return &ProcessRequest{Batch: batch(), Rejected: []pipeline.Reject{{Model: "M", Key: pipeline.Key{PK: "p"}, Seq: 9, Reason: "no"}}}
		}, &ProcessRequest{}},
		{"process reply", func() any { b := batch(); return &ProcessReply{Batch: &b} }, &ProcessReply{}},
		{"process reply, all dropped", func() any { return &ProcessReply{Rejected: []pipeline.Reject{{Model: "M", Reason: "r"}}} }, &ProcessReply{}},
		{"empty batch", func() any { return &ProcessRequest{Batch: pipeline.Batch{V: 1, ID: "e", Site: "s"}} }, &ProcessRequest{}},
		{"fire", func() any { return &FireRequest{Pipeline: "ingest", Changes: sampleChanges()} }, &FireRequest{}},
		{"configure", func() any {
			return &ConfigureRequest{Kind: pipeline.KindStage, Name: "n", Config: json.RawMessage(`{"a":1}`)}
		}, &ConfigureRequest{}},
		{"publish", func() any {
			return &PublishRequest{Channel: pipeline.ChanUp, Site: "dev-1", UUID: "u", Metadata: map[string]string{"k": "v"}, Payload: []byte{0, 1, 255}}
		}, &PublishRequest{}},
		{"delivery", func() any { return &Delivery{N: 3, UUID: "u", Payload: []byte("p")} }, &Delivery{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in()
			data, err := codec{}.Marshal(in)
			require.NoError(t, err)
			assert.Equal(t, tt.in(), in, "Marshal leaves the message as it was")
			require.NoError(t, codec{}.Unmarshal(data, tt.out))
			assert.Equal(t, reflect.ValueOf(in).Elem().Interface(), reflect.ValueOf(tt.out).Elem().Interface())
		})
	}
}

// The binary form writes each field of a change by hand: a field added
// to pipeline.Change (or Key, Version) must be added to writeChange and
// reader.change, or it would be lost crossing to a plugin.
func TestCodecKnowsEveryChangeField(t *testing.T) {
	fields := func(v any) []string {
		var out []string
		ty := reflect.TypeOf(v)
		for i := range ty.NumField() {
			out = append(out, ty.Field(i).Name)
		}
		return out
	}
	assert.Equal(t, []string{"Seq", "Model", "Op", "Key", "Item", "Version", "Origin", "Time"}, fields(pipeline.Change{}))
	assert.Equal(t, []string{"PK", "SK"}, fields(pipeline.Key{}))
	assert.Equal(t, []string{"Wall", "Counter", "Origin"}, fields(pipeline.Version{}))
}

// What a plugin answers is untrusted: framing that does not add up is an
// error naming it, never a panic or an item reaching past its bytes.
func TestCodecRefusesBadFraming(t *testing.T) {
	good, err := codec{}.Marshal(&ProcessReply{Batch: &pipeline.Batch{V: 1, ID: "b", Site: "s", Changes: sampleChanges()}})
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"unknown kind", []byte("X{}")},
		{"short header", []byte("B\x00\x00")},
		{"JSON length past the end", append([]byte("B\x7f\xff\xff\xff"), good[5:]...)},
		{"cut in the changes", good[:len(good)-3]},
		{"bytes after the last change", append(append([]byte(nil), good...), 0)},
		{"a huge change count", append(append([]byte(nil), good[:5+int(good[4])]...), 0xff, 0xff, 0xff, 0xff, 0x0f)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := codec{}.Unmarshal(tt.data, &ProcessReply{})
			require.Error(t, err)
		})
	}
	require.NoError(t, codec{}.Unmarshal(good, &ProcessReply{}))
}

func FuzzCodecUnmarshal(f *testing.F) {
	for _, m := range []any{
		&ProcessReply{Batch: &pipeline.Batch{V: 1, ID: "b", Site: "s", Changes: sampleChanges()}},
		&ProcessReply{},
		&FireRequest{Pipeline: "p", Changes: sampleChanges()[:1]},
	} {
		data, err := codec{}.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var reply ProcessReply
		if err := (codec{}).Unmarshal(data, &reply); err != nil || reply.Batch == nil {
			return
		}
		// What decodes encodes again and decodes to the same.
		again, err := codec{}.Marshal(&reply)
		if err != nil {
			return // a JSON value goccy reads but will not write
		}
		var second ProcessReply
		if err := (codec{}).Unmarshal(again, &second); err != nil {
			t.Fatalf("re-encoded reply does not decode: %v", err)
		}
		if len(second.Batch.Changes) != len(reply.Batch.Changes) {
			t.Fatalf("%d changes, then %d", len(reply.Batch.Changes), len(second.Batch.Changes))
		}
		for i := range reply.Batch.Changes {
			if string(second.Batch.Changes[i].Item) != string(reply.Batch.Changes[i].Item) {
				t.Fatalf("change %d's item changed", i)
			}
		}
	})
}
