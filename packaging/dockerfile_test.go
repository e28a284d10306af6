package packaging

import (
	"bufio"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The image cannot be built on the development machine: it reaches no
// container registry, so the base images (the Go builder, distroless)
// cannot be pulled (docs/install.md). These tests check what can be
// checked without them: the Dockerfile's shape, and its build stage's
// commands run here on a copy of the build context as .dockerignore
// leaves it.

// instruction is one Dockerfile instruction: its keyword and the rest,
// continuation lines joined.
type instruction struct {
	cmd, args string
}

// stage is one FROM and what follows it.
type stage struct {
	from string // the FROM line after the keyword
	ins  []instruction
}

// parseDockerfile reads the Dockerfile's stages (comment lines dropped,
// backslash continuations joined, as docker does).
func parseDockerfile(t *testing.T) (args map[string]string, stages []stage) {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	require.NoError(t, err)
	defer f.Close()
	args = map[string]string{} // ARGs before the first FROM, with defaults
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSpace(strings.TrimSuffix(line, `\`)) + " ")
			continue
		}
		cur.WriteString(line)
		cmd, rest, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(rest)}
		switch {
		case in.cmd == "FROM":
			stages = append(stages, stage{from: in.args})
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case len(stages) > 0:
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	require.NoError(t, sc.Err())
	require.Len(t, stages, 2, "a build stage and the image")
	return args, stages
}

// all lists a stage's instructions of one keyword.
func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// TestDockerfileImage checks the image stage: a base without a shell or
// package manager (distroless static, or scratch), a numeric non-root
// user who owns the data folder, no RUN (there is no shell to run it),
// and iotod run as the entry point.
func TestDockerfileImage(t *testing.T) {
	_, stages := parseDockerfile(t)
	img := stages[1]
	base := strings.Fields(img.from)[0]
	assert.Regexp(t, `^(scratch|([a-z0-9.-]+/)*distroless/static(-debian\d+)?:nonroot)$`, base, "the image's base")
	assert.Empty(t, img.all("RUN"), "the image has no shell: nothing to RUN")

	users := img.all("USER")
	require.NotEmpty(t, users, "the image sets its USER")
	user := users[len(users)-1]
	m := regexp.MustCompile(`^(\d+):(\d+)$`).FindStringSubmatch(user)
	require.NotNil(t, m, "USER %q: want numeric uid:gid (a runtime can check a number is not root without /etc/passwd)", user)
	assert.NotEqual(t, "0", m[1], "USER is root")
	assert.NotEqual(t, "0", m[2], "USER's group is root")
	assert.Contains(t, img.all("COPY"), "--from=build --chown="+user+" /out/data /var/lib/iotod", "the data folder is the user's")
	assert.Contains(t, img.all("COPY"), "--from=build /out/iotod /iotod")

	entry := img.all("ENTRYPOINT")
	require.Len(t, entry, 1)
	var argv []string
	require.NoError(t, json.Unmarshal([]byte(entry[0]), &argv), "ENTRYPOINT in exec form: signals reach iotod, not a shell")
	assert.Equal(t, []string{"/iotod", "run"}, argv)
	assert.Contains(t, img.all("ENV"), "IOTOD_DATA=/var/lib/iotod IOTOD_SCHEMA=/etc/iotod/schema.json5")
	assert.Contains(t, img.all("VOLUME"), `["/var/lib/iotod"]`)
}

// dockerignored reports whether rel (slash-separated, from the context's
// root) is left out of the context by one of the .dockerignore patterns:
// rooted, * within a name, ** across folders, a folder taking what is in it.
func dockerignored(t *testing.T, patterns []string, rel string) bool {
	t.Helper()
	parts := strings.Split(rel, "/")
	var match func(p, n []string) bool
	match = func(p, n []string) bool {
		switch {
		case len(p) == 0:
			return true // a folder's pattern takes everything in it
		case p[0] == "**":
			return match(p[1:], n) || (len(n) > 0 && match(p, n[1:]))
		case len(n) == 0:
			return false
		}
		ok, err := path.Match(p[0], n[0])
		require.NoError(t, err, "pattern %q", p[0])
		return ok && match(p[1:], n[1:])
	}
	for _, p := range patterns {
		require.False(t, strings.HasPrefix(p, "!"), ".dockerignore exception %q: teach this test's matcher", p)
		if match(strings.Split(strings.Trim(path.Clean(p), "/"), "/"), parts) {
			return true
		}
	}
	return false
}

// buildContext copies the repository into a temporary folder as docker's
// build context: without what .dockerignore names.
func buildContext(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../.dockerignore")
	require.NoError(t, err)
	var patterns []string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	dst := t.TempDir()
	n := 0
	err = filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == ".." {
			return err
		}
		rel, err := filepath.Rel("..", p)
		if err != nil {
			return err
		}
		if dockerignored(t, patterns, filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	require.NoError(t, err)
	t.Logf("build context: %d files", n)
	return dst
}

// TestDockerfileBuild runs the build stage's RUN commands here, in a copy
// of the build context (the stage's WORKDIR, after COPY . .), with its
// ARGs set as docker sets them and /out in a temporary folder, and checks
// the binary the image would get: the full build, static (no dynamic
// section, no loader), CGO off, -trimpath, stripped, the version stamped;
// and that the builder image's Go is go.mod's.
func TestDockerfileBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the full binary")
	}
	if runtime.GOOS != "linux" {
		t.Skipf("runs the build stage's shell commands for linux; this is %s", runtime.GOOS)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("the build stage's RUN needs sh: %v", err)
	}
	globals, stages := parseDockerfile(t)
	build := stages[0]
	assert.Regexp(t, `^--platform=\$BUILDPLATFORM golang:\$\{GO_VERSION\}-\S+ AS build$`, build.from)
	mod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	require.NotNil(t, goVersion)
	assert.Equal(t, string(goVersion[1]), globals["GO_VERSION"], "the builder's Go is go.mod's")
	assert.Equal(t, []string{"/src"}, build.all("WORKDIR"))
	assert.Equal(t, []string{"go.mod go.sum ./", ". ."}, build.all("COPY"))

	ctx := buildContext(t)
	out := t.TempDir()
	// The stage's ARGs, as docker sets them for RUN: a value given with
	// --build-arg, TARGETOS and TARGETARCH from the target platform.
	given := map[string]string{"VERSION": testVersion, "COMMIT": testCommit, "TARGETOS": "linux", "TARGETARCH": runtime.GOARCH}
	env := os.Environ()
	for _, a := range build.all("ARG") {
		name, def, _ := strings.Cut(a, "=")
		v, ok := given[name]
		if !ok {
			v = def
		}
		env = append(env, name+"="+v)
	}
	runs := build.all("RUN")
	require.Len(t, runs, 2, "go mod download, go build")
	for _, run := range runs {
		cmd := exec.Command(sh, "-c", strings.ReplaceAll(run, "/out/", out+"/"))
		cmd.Dir, cmd.Env = ctx, env
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "RUN %s:\n%s", run, b)
	}

	bin := filepath.Join(out, "iotod")
	assert.DirExists(t, filepath.Join(out, "data"))
	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, prog := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, prog.Type, "static: no dynamic loader")
		assert.NotEqual(t, elf.PT_DYNAMIC, prog.Type, "static: no dynamic section")
	}
	assert.Nil(t, f.Section(".dynamic"), "static: no dynamic section")
	assert.Nil(t, f.Section(".symtab"), "-s strips the symbol table")
	info, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	assert.Equal(t, "0", settings["CGO_ENABLED"])
	assert.Equal(t, "true", settings["-trimpath"])
	assert.Empty(t, settings["-tags"], "the cloud worker's image holds the full build")

	version, err := exec.Command(bin, "version").CombinedOutput()
	require.NoError(t, err, "%s", version)
	assert.True(t, strings.HasPrefix(string(version), "version:  "+testVersion+"\ncommit:   "+testCommit+"\n"), "%s", version)
	for _, s := range []string{"badger", "sqlite", "dynamodb", "postgres"} {
		assert.Contains(t, string(version), "\n  storage/"+s+"\n")
	}
}
