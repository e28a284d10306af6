package db_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/schema"
)

var fence = regexp.MustCompile("(?s)```(\\w+)\\n(.*?)```")

// TestDocsDatabaseExamples checks the examples of docs/database.md: the
// schema loads, and the Go code is the Example that go test runs.
func TestDocsDatabaseExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/database.md")
	require.NoError(t, err)
	blocks := map[string][]string{}
	for _, m := range fence.FindAllStringSubmatch(string(doc), -1) {
		blocks[m[1]] = append(blocks[m[1]], m[2])
	}
	require.Len(t, blocks["json5"], 1)
	sch, err := schema.ParseBytes([]byte(blocks["json5"][0]), "json5", "docs/database.md")
	require.NoError(t, err)
	require.Contains(t, sch.Models, "Reading")

	require.Len(t, blocks["go"], 1)
	ex, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	body := strings.SplitN(strings.SplitN(string(ex), "// docs:begin\n", 2)[1], "\t// docs:end", 2)[0]
	require.Equal(t, body, blocks["go"][0], "docs/database.md shows Example verbatim")
}
