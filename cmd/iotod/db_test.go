package main

import (
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
