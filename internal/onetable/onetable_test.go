package onetable

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// TestLoadSchemaBlend: blended files merge in order, deeply, the including file
// on top; blend is dropped; a cycle is an error.
func TestLoadSchemaBlend(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.json5", `{version: '1', params: {isoDates: true, nulls: true}, models: {A: {id: {type: 'string'}}}}`)
	write(t, dir, "b.json", `{"params": {"nulls": false}, "models": {"B": {"id": {"type": "number"}}}}`)
	top := write(t, dir, "top.json5", `{blend: ['a.json5', 'b.json'], version: '2', models: {A: {name: {type: 'string'}}}}`)
	doc, err := LoadSchema(top)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"version": "2",
		"params":  map[string]any{"isoDates": true, "nulls": false},
		"models": map[string]any{
			"A": map[string]any{"id": map[string]any{"type": "string"}, "name": map[string]any{"type": "string"}},
			"B": map[string]any{"id": map[string]any{"type": "number"}},
		},
	}, doc)

	write(t, dir, "c1.json5", `{blend: ['c2.json5']}`)
	write(t, dir, "c2.json5", `{blend: ['c1.json5']}`)
	_, err = LoadSchema(filepath.Join(dir, "c1.json5"))
	assert.ErrorContains(t, err, "cycle")

	_, err = LoadSchema(write(t, dir, "bad.json5", `{blend: 'a.json5'}`))
	assert.ErrorContains(t, err, "list")
}

// TestRunErrors: the harness's refusals come back as *Error; no DynamoDB is
// contacted for these.
func TestRunErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node (and npm ci the first time): not under -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	schema := map[string]any{
		"version": "0.0.1", "format": "onetable:1.1.0",
		"indexes": map[string]any{"primary": map[string]any{"hash": "pk", "sort": "sk"}},
		"models":  map[string]any{},
	}
	_, err := Run(ctx, Request{Endpoint: "http://127.0.0.1:1", Table: "nothing", Schema: schema, Op: "bogus"})
	var oe *Error
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "bogus", oe.Op)
	assert.Contains(t, oe.Message, `unknown op "bogus"`)

	_, err = Run(ctx, Request{Table: "nothing", Schema: schema, Op: "get", Model: "A"})
	require.ErrorAs(t, err, &oe)
	assert.Contains(t, oe.Message, `missing "endpoint"`)

	_, err = Run(ctx, Request{Endpoint: "http://127.0.0.1:1", Table: "nothing", Schema: map[string]any{"version": "1"}, Op: "get", Model: "A"})
	require.ErrorAs(t, err, &oe)
	assert.Contains(t, oe.Message, "indexes", "OneTable checks the schema")
}
