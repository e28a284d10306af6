package filter

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

const site = "pump-7"

var batch = []pipeline.Change{
	{Seq: 1, Model: "Reading", Op: pipeline.OpCreate, Origin: site},
	{Seq: 2, Model: "Reading", Op: pipeline.OpUpdate, Origin: "cloud"},
	{Seq: 3, Model: "User", Op: pipeline.OpRemove, Origin: site},
	{Seq: 4, Model: "Account", Op: pipeline.OpUpsert, Origin: "pump-8"},
}

func seqs(changes []pipeline.Change) []uint64 {
	out := []uint64{}
	for _, c := range changes {
		out = append(out, c.Seq)
	}
	return out
}

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"default selects all", NewDefault(), []uint64{1, 2, 3, 4}},
		{"models", Filter{Models: []string{"Reading", "Account"}, Origin: OriginBoth}, []uint64{1, 2, 4}},
		{"ops", Filter{Ops: []pipeline.Op{pipeline.OpRemove, pipeline.OpUpsert}, Origin: OriginBoth}, []uint64{3, 4}},
		{"local", Filter{Origin: OriginLocal}, []uint64{1, 3}},
		{"remote", Filter{Origin: OriginRemote}, []uint64{2, 4}},
		{"all keys", Filter{Models: []string{"Reading"}, Ops: []pipeline.Op{pipeline.OpUpdate}, Origin: OriginRemote}, []uint64{2}},
		{"nothing", Filter{Models: []string{"Nope"}, Origin: OriginBoth}, []uint64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]pipeline.Change(nil), batch...)
			require.Equal(t, tc.want, seqs(tc.f.Select(site, in)))
			require.Equal(t, seqs(batch), seqs(in), "the batch is left as it was")
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Filter
		want []string // substrings; none: valid
	}{
		{"default", NewDefault(), nil},
		{"every key", Filter{Models: []string{"A"}, Ops: []pipeline.Op{"create", "update", "upsert", "remove"}, Origin: OriginLocal}, nil},
		{"bad op", Filter{Ops: []pipeline.Op{"create", "delete"}, Origin: OriginBoth}, []string{`ops[1]: "delete" is not one of`}},
		{"empty model", Filter{Models: []string{""}, Origin: OriginRemote}, []string{"models[0]: empty"}},
		{"bad origin", Filter{Origin: "elsewhere"}, []string{`origin: "elsewhere"`}},
		{"empty origin", Filter{}, []string{`origin: ""`}},
		{"all faults", Filter{Models: []string{""}, Ops: []pipeline.Op{"x"}, Origin: "y"}, []string{"models[0]", "ops[0]", "origin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, pipeline.ErrInvalid)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestPayloads(t *testing.T) {
	changes := []pipeline.Change{
		{Seq: 9, Model: "Reading", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "r#1", SK: "t#2"}, Item: json.RawMessage(`{"v":1}`),
			Version: pipeline.Version{Wall: 5, Counter: 1, Origin: site}, Origin: site, Time: 6},
		{Model: "User", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "u#1"}, Origin: "cloud"},
	}
	got, err := json.Marshal(Payloads(changes))
	require.NoError(t, err)
	require.JSONEq(t, `[
		{"model":"Reading","op":"create","key":{"pk":"r#1","sk":"t#2"},"item":{"v":1},
		 "version":{"wall":5,"counter":1,"origin":"pump-7"},"origin":"pump-7","time":6},
		{"model":"User","op":"remove","key":{"pk":"u#1","sk":""},
		 "version":{"wall":0,"counter":0,"origin":""},"origin":"cloud","time":0}]`, string(got))
	empty, err := json.Marshal(Payloads(nil))
	require.NoError(t, err)
	require.Equal(t, "[]", string(empty))
}
