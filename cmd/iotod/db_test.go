package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
)

// TestDBFlagsPerCommand: each db command lists, and takes, only its own
// flags (and the API's, common to all).
func TestDBFlagsPerCommand(t *testing.T) {
	own := map[string][]string{
		"create": {"fields", "hidden"},
		"get":    {"fields", "hidden"},
		"update": {"fields", "hidden"},
		"upsert": {"fields", "hidden"},
		"find":   {"count", "fields", "hidden", "index", "limit", "next", "reverse", "where"},
		"remove": {"index", "many", "where"},
	}
	flagRE := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z-]+)`)
	for op, want := range own {
		out, err := runCmd(t, "db", op, "--help")
		require.NoError(t, err)
		var got []string
		for _, m := range flagRE.FindAllStringSubmatch(out, -1) {
			if !slices.Contains([]string{"addr", "socket", "storage", "config", "help"}, m[1]) {
				got = append(got, m[1])
			}
		}
		slices.Sort(got)
		assert.Equal(t, want, got, "db %s --help:\n%s", op, out)
	}
	_, err := runCmd(t, "db", "create", "Account", "{}", "--where", "${name} = {x}", "--addr", "127.0.0.1:1")
	assert.ErrorContains(t, err, "unknown flag: --where")
	_, err = runCmd(t, "db", "get", "Account", "{}", "--many", "--addr", "127.0.0.1:1")
	assert.ErrorContains(t, err, "unknown flag: --many")
}

// TestParseItem: a malformed item is told in words, with where it goes
// wrong, not with Go's JSON error text.
func TestParseItem(t *testing.T) {
	for arg, want := range map[string]string{
		`{bad`:                          `the item is not valid JSON: unexpected 'b' at line 1, column 2`,
		"{\"temp\": 1,\n \"state\" on}": `the item is not valid JSON: unexpected 'o' at line 2, column 10`,
		`{"name": `:                     `the item is not valid JSON: it ends at line 1, column 10 before the value is complete`,
		`[1, 2]`:                        `the item must be a JSON object, not a list`,
		`"x"`:                           `the item must be a JSON object, not a string`,
		`null`:                          `the item must be a JSON object, such as '{"id": "x"}', not null`,
		` `:                             `the item is empty: give a JSON object, such as '{"id": "x"}'`,
		`{"a": 1} {"b": 2}`:             `the item must be one JSON object: there is more after it, at line 1, column 10`,
	} {
		_, err := parseItem(arg, nil)
		assert.EqualError(t, err, want, arg)
	}
	item, err := parseItem("-", strings.NewReader(`{"temp": 12345678901234567891}`))
	require.NoError(t, err)
	assert.Equal(t, db.Item{"temp": json.Number("12345678901234567891")}, item)
}
