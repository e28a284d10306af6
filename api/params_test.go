package api

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
)

func TestParamsFromQuery(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		query string
		want  *db.Params
		err   string
	}{
		{query: "", want: &db.Params{}},
		{query: "limit=10&next=abc&index=gs1&reverse&count=1&many=true&hidden=false",
			want: &db.Params{Limit: 10, Next: "abc", Index: "gs1", Reverse: true, Count: true, Many: true}},
		{query: "where=%24%7Btemp%7D+%3E+%7B20%7D&fields=id,+temp,,state",
			want: &db.Params{Where: "${temp} > {20}", Fields: []string{"id", "temp", "state"}}},
		{query: `substitutions={"min":12345678901234567891}&exists=false&partial=true`,
			want: &db.Params{Substitutions: map[string]any{"min": json.Number("12345678901234567891")}, Exists: &no, Partial: &yes}},
		{query: "limit=-1", err: `limit: want a non-negative integer, got "-1" (0: the default page of 100 items; over 1000: pages of 1000)`},
		{query: "fields=,", err: "fields: want a comma-separated list"},
		{query: "substitutions=[1]", err: "substitutions: want a JSON object"},
		{query: "substitutions=null", err: "substitutions: want a JSON object"},
		{query: `substitutions={"a":1}{}`, err: "substitutions: want a JSON object"},
		{query: "exists=maybe", err: "exists: want true or false"},
		{query: "Limit=1", err: `unknown query parameter "Limit"`},
		{query: "a=1&b=2", err: `unknown query parameter "a" (known: count, exists, fields, hidden, index, limit, many, next, partial, reverse, storage, substitutions, where); unknown query parameter "b"`},
	}
	for _, tt := range tests {
		got, err := paramsFromQuery(tt.query)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.query)
			continue
		}
		require.NoError(t, err, tt.query)
		assert.Equal(t, tt.want, got, tt.query)
	}
}

func TestParamsQueryRoundTrip(t *testing.T) {
	yes := true
	p := &db.Params{Limit: 3, Next: "n x", Index: "gs1", Where: "${a} = @{v} & ${b} <> {1}",
		Substitutions: map[string]any{"v": "x"}, Reverse: true, Fields: []string{"a", "b"},
		Count: true, Many: true, Hidden: true, Exists: &yes, Partial: &yes}
	q, err := paramsToQuery(p)
	require.NoError(t, err)
	got, err := paramsFromQuery(q)
	require.NoError(t, err)
	assert.Equal(t, p, got)

	q, err = paramsToQuery(nil)
	require.NoError(t, err)
	assert.Empty(t, q)
}
