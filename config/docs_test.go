package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/config"
)

// TestDocsConfigurationExample loads the example of docs/configuration.md,
// beside the repository's schema, through the real loader.
func TestDocsConfigurationExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```yaml\\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	require.NotEmpty(t, blocks)
	for _, b := range blocks {
		dir := t.TempDir()
		schema, err := os.ReadFile("../schema.json5")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "schema.json5"), schema, 0o644))
		file := filepath.Join(dir, "pipelines.yaml")
		require.NoError(t, os.WriteFile(file, []byte(b[1]), 0o644))
		cfg, err := config.Load(file)
		require.NoError(t, err)
		require.Equal(t, "pump-7", cfg.Site)
		_, st, ok := cfg.LocalStorage()
		require.True(t, ok)
		require.Equal(t, filepath.Join(dir, "data/device"), st.Badger.Path)
	}
}
