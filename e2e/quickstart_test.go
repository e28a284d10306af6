package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	fence = regexp.MustCompile("(?s)```(\\w+)\\n(.*?)```")
	// skipped are the quick start's lines the test does itself: it works
	// in a copy of the repository's files, with iotod built and on PATH.
	skipped = regexp.MustCompile(`^(git clone |cd iotod$|go build -o bin/iotod |export PATH=)`)
	goRun   = regexp.MustCompile(`^go run \./cmd/iotod `)
	// Ids, times and loopback ports vary from run to run.
	ulidRE = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{26}\b`)
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	portRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	agoRE  = regexp.MustCompile(`\b\d[0-9hmsµn.]* ago\b`)
)

// step is a sh block of the quick start and the output shown after it.
type step struct {
	commands []string
	want     []string
}

// TestQuickstart runs every sh block of docs/quickstart.md in a copy of
// the repository's config files, on free ports: the blocks that start
// `iotod run` start it in the background (stopping those of an earlier
// part first), the others run in turn. The lines shown after a block must
// come out in that order (ids, times, ages and ports aside); after a server's
// block, in its log. An id shown twice must be the same id both times.
func TestQuickstart(t *testing.T) {
	bin := iotodBin(t)
	dir := quickstartDir(t)
	env := []string{
		"IOTOD_BROKER=" + freeAddr(t), "IOTOD_API=" + freeAddr(t), "IOTOD_CLOUD_API=" + freeAddr(t),
		"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	text, err := os.ReadFile("../docs/quickstart.md")
	require.NoError(t, err)
	steps := parseSteps(string(text))
	require.GreaterOrEqual(t, len(steps), 6, "sh blocks in the quick start")

	docIDs, outIDs := idMask{}, idMask{} // the same id, the same name, in the doc and in the output
	var servers []*node
	started := 0
	serving := false // the last step started servers
	for i, s := range steps {
		var out strings.Builder
		for _, line := range s.commands {
			line = goRun.ReplaceAllString(line, "iotod ")
			if strings.HasPrefix(line, "iotod run") {
				if !serving {
					for _, n := range servers {
						n.stop()
					}
					servers = nil
				}
				args := strings.Fields(strings.TrimPrefix(line, "iotod "))
				started++
				n := startIn(t, fmt.Sprintf("server-%d", started), dir, args, env...)
				servers = append(servers, n)
				out.WriteString(n.logText())
				continue
			}
			out.WriteString(runLine(t, dir, env, line))
		}
		serving = len(s.commands) > 0 && strings.Contains(goRun.ReplaceAllString(s.commands[len(s.commands)-1], "iotod "), "iotod run")
		if serving { // a log: its ids are its own
			requireLines(t, i+1, idMask{}.mask(s.want), idMask{}.mask([]string{out.String()})[0])
			continue
		}
		requireLines(t, i+1, docIDs.mask(s.want), outIDs.mask([]string{out.String()})[0])
	}
	for _, n := range servers {
		n.stop()
	}
}

// quickstartDir copies the files the quick start uses into a temp
// folder: pipelines.yaml (its API on a free port), the schema, and
// docs/examples.
func quickstartDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cp := func(src, dst, from, to string) {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		if from != "" {
			require.Equal(t, 1, strings.Count(string(b), from), "%s: %q once", src, from)
			b = []byte(strings.Replace(string(b), from, to, 1))
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, b, 0o600))
	}
	cp("../pipelines.yaml", filepath.Join(dir, "pipelines.yaml"), "listen: 127.0.0.1:7400", "listen: "+freeAddr(t))
	cp("../schema.json5", filepath.Join(dir, "schema.json5"), "", "")
	examples, err := filepath.Glob("../docs/examples/*.yaml")
	require.NoError(t, err)
	for _, ex := range examples {
		cp(ex, filepath.Join(dir, "docs", "examples", filepath.Base(ex)), "", "")
	}
	return dir
}

// parseSteps reads the sh blocks of a markdown text, each with the text
// or json block right after it as its output.
func parseSteps(md string) []step { return stepsOf(md, "sh", skipped) }

// stepsOf reads the blocks of language lang of a markdown text, each with
// the text or json block right after it as its output; comment lines, and
// lines skip matches (nil: none), are left out.
func stepsOf(md, lang string, skip *regexp.Regexp) []step {
	var steps []step
	blocks := fence.FindAllStringSubmatch(md, -1)
	for i, b := range blocks {
		if b[1] != lang {
			continue
		}
		var s step
		for _, line := range strings.Split(b[2], "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") && (skip == nil || !skip.MatchString(line)) {
				s.commands = append(s.commands, line)
			}
		}
		if i+1 < len(blocks) && (blocks[i+1][1] == "text" || blocks[i+1][1] == "json") {
			for _, line := range strings.Split(blocks[i+1][2], "\n") {
				if line = strings.TrimSpace(line); line != "" {
					s.want = append(s.want, line)
				}
			}
		}
		steps = append(steps, s)
	}
	return steps
}

// runLine runs one command line of the quick start with bash.
func runLine(t *testing.T, dir string, env []string, line string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s\nstdout: %s\nstderr: %s", line, stdout.String(), stderr.String())
	return stdout.String()
}

// idMask names ids by their order of first appearance: <id1>, <id2>...
type idMask map[string]string

func (m idMask) mask(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = ulidRE.ReplaceAllStringFunc(l, func(id string) string {
			if _, ok := m[id]; !ok {
				m[id] = fmt.Sprintf("<id%d>", len(m)+1)
			}
			return m[id]
		})
	}
	return out
}

// requireLines checks that want's lines are in got, in order, each within
// a line of got, once times and ports are masked.
func requireLines(t *testing.T, step int, want []string, got string) {
	t.Helper()
	if w, ok := firstMissing(want, got); ok {
		require.Fail(t, "missing output", "quick start step %d: %q not in the output (in order):\n%s", step, w, got)
	}
}

// linesIn reports whether want's lines are in got in order, as
// requireLines checks them.
func linesIn(want []string, got string) bool {
	_, missing := firstMissing(want, got)
	return !missing
}

// firstMissing returns the first of want's lines not found in got after
// the lines before it, times and ports masked on both sides.
func firstMissing(want []string, got string) (string, bool) {
	mask := func(s string) string {
		s = timeRE.ReplaceAllString(s, "<time>")
		s = agoRE.ReplaceAllString(s, "<ago>")
		return portRE.ReplaceAllString(s, "127.0.0.1:<port>")
	}
	lines := strings.Split(mask(got), "\n")
	at := 0
	for _, w := range want {
		w = mask(w)
		for at < len(lines) && !strings.Contains(lines[at], w) {
			at++
		}
		if at >= len(lines) {
			return w, true
		}
		at++
	}
	return "", false
}

// runQuickstartSection runs the bash steps of a quick start section in a
// copy of the files it uses (quickstartDir) as a reader would, with extra
// variables set: exports set variables, `iotod run` starts a process,
// services.sh lines are skipped (the tests' services run), and each
// step's output must hold the lines shown after it; a step of reads only
// (iotod db find, or a command starting with query) is tried again for
// 30 s until it does. It returns the number of commands run.
func runQuickstartSection(t *testing.T, steps []step, extra map[string]string, query string) int {
	t.Helper()
	dir := quickstartDir(t)
	vars := map[string]string{
		"IOTOD_BROKER": freeAddr(t), "IOTOD_API": freeAddr(t), "IOTOD_CLOUD_API": freeAddr(t),
		"PATH": filepath.Dir(iotodBin(t)) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	maps.Copy(vars, extra)
	env := func() []string {
		var out []string
		for k, v := range vars {
			out = append(out, k+"="+v)
		}
		return out
	}
	lookup := func(name string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		return os.Getenv(name)
	}
	ran := 0
	for i, s := range steps {
		run := func() string {
			var out strings.Builder
			for _, line := range s.commands {
				line = goRun.ReplaceAllString(line, "iotod ")
				switch {
				case strings.HasPrefix(line, "bash scripts/services.sh "), strings.HasPrefix(line, "export $("):
					continue // the tests' services are running
				case strings.HasPrefix(line, "export "):
					for _, kv := range strings.Fields(strings.TrimPrefix(line, "export ")) {
						k, v, ok := strings.Cut(kv, "=")
						require.True(t, ok, "export %q", kv)
						vars[k] = os.Expand(v, lookup)
					}
				case strings.HasPrefix(line, "iotod run"):
					args := strings.Fields(strings.TrimPrefix(line, "iotod "))
					n := startIn(t, fmt.Sprintf("server-%d", i+1), dir, args, env()...)
					out.WriteString(n.logText())
				default:
					out.WriteString(runLine(t, dir, env(), line))
					ran++
				}
			}
			return out.String()
		}
		readOnly := true
		for _, line := range s.commands {
			readOnly = readOnly && (strings.HasPrefix(line, "iotod db find") || strings.HasPrefix(line, query))
		}
		out := run()
		for deadline := time.Now().Add(30 * time.Second); readOnly && !linesIn(s.want, out) && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			out = run()
		}
		requireLines(t, i+1, s.want, out)
	}
	return ran
}

// quickstartBashSteps reads the bash steps of the quick start's section
// of that title.
func quickstartBashSteps(t *testing.T, title string) []step {
	t.Helper()
	text, err := os.ReadFile("../docs/quickstart.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(text), "\n## "+title+"\n")
	require.True(t, ok, "docs/quickstart.md has no section %q", title)
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	return parseBashSteps(section)
}
