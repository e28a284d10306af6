package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPluginsGuide runs every sh block of docs/plugins.md from the
// repository's root, as the quick start's test does (iotod run in the
// background, the output shown after a block checked, ids, times and
// ports aside), with the data in a temp folder and the API on a free
// port; and checks that every go block is code of the examples, word for
// word.
func TestPluginsGuide(t *testing.T) {
	bin := iotodBin(t)
	text, err := os.ReadFile("../docs/plugins.md")
	require.NoError(t, err)
	md := string(text)

	sources := exampleSources(t)
	for _, b := range fence.FindAllStringSubmatch(md, -1) {
		if b[1] == "go" {
			require.Contains(t, sources, strings.TrimSpace(b[2]), "a go block of docs/plugins.md is not in examples/plugins")
		}
	}

	env := []string{
		"IOTOD_DATA=" + t.TempDir(), "IOTOD_API=" + freeAddr(t),
		"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	steps := stepsOf(md, "sh", nil)
	require.GreaterOrEqual(t, len(steps), 6, "sh blocks in the guide")
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	ids := idMask{}
	for i, s := range steps {
		var out strings.Builder
		for _, line := range s.commands {
			if strings.HasPrefix(line, "iotod run") {
				n := startLogged(t, fmt.Sprintf("guide-%d", i+1), root, t.TempDir(), strings.Fields(strings.TrimPrefix(line, "iotod ")), env...)
				out.WriteString(n.logText())
				continue
			}
			out.WriteString(runLine(t, root, env, line))
		}
		requireLines(t, i+1, ids.mask(s.want), idMask{}.mask([]string{out.String()})[0])
	}
}

// exampleSources is the text of every Go file under examples/plugins.
func exampleSources(t *testing.T) string {
	var b strings.Builder
	err := filepath.WalkDir("../examples/plugins", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		data, err := os.ReadFile(path)
		b.Write(data)
		return err
	})
	require.NoError(t, err)
	return b.String()
}
