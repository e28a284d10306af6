package db_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

type badCase struct {
	Name   string         `yaml:"name"`
	Op     string         `yaml:"op"`
	Model  string         `yaml:"model"`
	Item   map[string]any `yaml:"item"`
	Params map[string]any `yaml:"params"`
	Big    string         `yaml:"big"`
	Kind   string         `yaml:"kind"`
	Err    string         `yaml:"err"`
}

var kinds = map[string]error{
	"invalid": pipeline.ErrInvalid, "not_found": pipeline.ErrNotFound, "exists": pipeline.ErrExists,
	"condition": pipeline.ErrConditionFailed, "too_large": pipeline.ErrTooLarge,
}

func TestBadInputChangesNothing(t *testing.T) {
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/bad-input.yaml")
	require.NoError(t, err)
	var cases []badCase
	require.NoError(t, yaml.Unmarshal(raw, &cases))
	require.NotEmpty(t, cases)

	e := newEnv(t)
	before, err := e.db.Create(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1, "temp": 20}, &db.Params{Hidden: true})
	require.NoError(t, err)
	depth := e.outboxDepth(t)

	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			item := db.Item(tc.Item)
			if tc.Big != "" {
				item[tc.Big] = []any{strings.Repeat("x", 420*1024)}
			}
			p := &db.Params{}
			if w, ok := tc.Params["where"].(string); ok {
				p.Where = w
			}
			var err error
			switch tc.Op {
			case "create":
				_, err = e.db.Create(ctx, tc.Model, item, p)
			case "update":
				_, err = e.db.Update(ctx, tc.Model, item, p)
			case "find":
				_, err = e.db.Find(ctx, tc.Model, item, p)
			default:
				t.Fatalf("unknown op %q", tc.Op)
			}
			require.Error(t, err)
			require.ErrorIs(t, err, kinds[tc.Kind])
			require.ErrorContains(t, err, tc.Err)
		})
	}
	after, err := e.db.Get(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1}, &db.Params{Hidden: true})
	require.NoError(t, err)
	require.Equal(t, before, after, "the stored item is unchanged")
	require.Equal(t, depth, e.outboxDepth(t), "no change reached the outbox")
	res, err := e.db.Find(ctx, "Reading", db.Item{}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 1, "nothing else was stored")
}
