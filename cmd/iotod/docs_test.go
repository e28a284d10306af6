package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/config"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/schema"
)

var (
	yamlBlock = regexp.MustCompile("(?s)```yaml\\n(.*?)```")
	// wholeConfig marks a block that is a config of its own.
	wholeConfig = regexp.MustCompile(`(?m)^site:`)
)

// overPrevious starts a block that is merged over the block before it.
const overPrevious = "# over the block above"

// docsBase is what a fragment of a config is laid over.
const docsBase = `site: docs-test
schema: schema.json5
storage:
  local: {type: badger, path: ./data/device}
`

// TestDocsYAML runs every yaml block of docs/*.md, and every file of
// docs/examples/, through the validator with the built-in plugins: a block
// with a site is a whole config, one without a fragment laid over
// docsBase, one starting with overPrevious a second file over the block
// before it.
func TestDocsYAML(t *testing.T) {
	testenv.NeedBadger(t) // the configs name badger storages, which 32-bit builds refuse
	reg, err := components()
	require.NoError(t, err)
	schemaText, err := os.ReadFile("../../schema.json5")
	require.NoError(t, err)
	noEnv := func(string) (string, bool) { return "", false }

	docs, err := filepath.Glob("../../docs/*.md")
	require.NoError(t, err)
	total := 0
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		require.NoError(t, err)
		blocks := yamlBlock.FindAllStringSubmatch(string(text), -1)
		for i, b := range blocks {
			total++
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "schema.json5"), schemaText, 0o600))
			write := func(name, body string) string {
				p := filepath.Join(dir, name)
				require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
				return p
			}
			var paths []string
			switch block := b[1]; {
			case strings.HasPrefix(block, overPrevious):
				require.Positive(t, i, "%s: the first block cannot go over another", doc)
				paths = []string{write("first.yaml", blocks[i-1][1]), write("second.yaml", block)}
			case wholeConfig.MatchString(block):
				paths = []string{write("pipelines.yaml", block)}
			default:
				paths = []string{write("base.yaml", docsBase), write("fragment.yaml", block)}
			}
			cfg, err := config.LoadWith(reg, noEnv, paths...)
			require.NoError(t, err, "%s, yaml block %d:\n%s", doc, i+1, b[1])
			_, err = schema.Load(cfg.Schema)
			require.NoError(t, err)
		}
	}
	require.GreaterOrEqual(t, total, 8, "yaml blocks in docs/")

	examples, err := filepath.Glob("../../docs/examples/*.yaml")
	require.NoError(t, err)
	for _, ex := range examples {
		_, err := config.LoadWith(reg, noEnv, ex)
		require.NoError(t, err, ex)
	}
}

// TestDefaultConfigFile validates the repository's all-in-one
// pipelines.yaml.
func TestDefaultConfigFile(t *testing.T) {
	testenv.NeedBadger(t) // the configs name badger storages, which 32-bit builds refuse
	cfg, sch, err := loadChecked("../../pipelines.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, sch.ModelNames)
	_, _, ok := cfg.LocalStorage()
	require.True(t, ok)
}
