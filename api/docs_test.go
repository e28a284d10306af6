package api_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
)

const docFile = "../docs/http-api.md"

// shBlock is one ```sh block of the doc.
type shBlock struct {
	line   int // of the opening fence
	script string
	// want holds the "# => " lines: output lines expected in this order.
	want []string
}

// shBlocks extracts the ```sh blocks of a markdown file.
func shBlocks(t *testing.T, path string) []shBlock {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	var blocks []shBlock
	var cur *shBlock
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sh":
			cur = &shBlock{line: n}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			if want, ok := strings.CutPrefix(line, "# => "); ok {
				cur.want = append(cur.want, want)
			}
			cur.script += line + "\n"
		}
	}
	require.NoError(t, sc.Err())
	require.Nil(t, cur, "unclosed ```sh block")
	return blocks
}

// matchLine reports whether line matches pattern, where "..." stands for
// any text.
func matchLine(pattern, line string) bool {
	parts := strings.Split(pattern, "...")
	if !strings.HasPrefix(line, parts[0]) {
		return false
	}
	line = line[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(line, p)
		}
		j := strings.Index(line, p)
		if j < 0 {
			return false
		}
		line = line[j+len(p):]
	}
	return line == ""
}

func TestMatchLine(t *testing.T) {
	assert.True(t, matchLine(`{"a":1}`, `{"a":1}`))
	assert.False(t, matchLine(`{"a":1}`, `{"a":12}`))
	assert.True(t, matchLine(`{"a":"...","b":...}`, `{"a":"x y","b":[1]}`))
	assert.False(t, matchLine(`{"a":"...","b":2}`, `{"a":"x","b":3}`))
	assert.True(t, matchLine(`...`, ``))
}

// TestDocExamples runs every ```sh block of docs/http-api.md with bash
// against a started server with pipelines, in order: each must exit 0 and print the
// lines its "# =>" comments show.
func TestDocExamples(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "the doc examples need %s", tool)
	}
	ctx := context.Background()
	// A device store replicating up to a cloud store over inproc, so the
	// pipeline endpoints have something to show.
	plan, _ := testPlan(t, "demo-device", true)
	r := startRunner(t, plan)
	srv, err := api.NewServer(api.Options{DB: r.DB("local"), Pipelines: r, Site: "demo-device"})
	require.NoError(t, err)
	sock := filepath.Join(t.TempDir(), "api.sock")
	require.NoError(t, srv.Start(ctx, "127.0.0.1:0", sock))
	t.Cleanup(func() { require.NoError(t, srv.Shutdown(ctx)) })
	addr := srv.Addrs()[0].String()

	blocks := shBlocks(t, docFile)
	require.GreaterOrEqual(t, len(blocks), 5)
	for _, b := range blocks {
		script := strings.NewReplacer("http://127.0.0.1:7400", "http://"+addr, "/run/iotod/api.sock", sock).Replace(b.script)
		require.NotEqual(t, b.script, script, "%s:%d: the block calls no server", docFile, b.line)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := exec.CommandContext(rctx, "bash", "-euo", "pipefail", "-c", script).CombinedOutput()
		cancel()
		require.NoError(t, err, "%s:%d: the block failed:\n%s", docFile, b.line, out)
		lines := strings.Split(string(out), "\n")
		for _, want := range b.want {
			i := slices.IndexFunc(lines, func(l string) bool { return matchLine(want, l) })
			if !assert.GreaterOrEqual(t, i, 0, "%s:%d: no output line matches\n  %s\nin order; the output was:\n%s", docFile, b.line, want, out) {
				continue
			}
			lines = lines[i+1:]
		}
	}
}
