package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
)

// buildIotod builds the binary into a temp folder.
func buildIotod(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "iotod")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// writeConfig writes a config and the OneTable example schema into a temp
// folder and returns the config's path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	src := "../../schema/testdata/onetable-example.json5"
	if _, err := os.Stat(src); err != nil {
		src = "testdata/onetable-example.json5"
	}
	schema, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "schema.json5"), schema, 0o600))
	path := filepath.Join(dir, "pipelines.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// result is the outcome of one CLI call.
type result struct {
	stdout, stderr string
	code           int
}

func runCLI(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// daemon is a running `iotod run`.
type daemon struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	done   chan error
}

var addrRE = regexp.MustCompile(`msg="iotod serving".* addr=(\S+)`)

// startDaemon starts `iotod run -c cfg` and waits for its "serving" line.
func startDaemon(t *testing.T, bin, cfg string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, "run", "-c", cfg)
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	d := &daemon{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			d.stderr.WriteString(sc.Text() + "\n")
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		d.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-d.done
		}
	})
	select {
	case d.addr = <-found:
	case err := <-d.done:
		t.Fatalf("iotod run exited: %v\n%s", err, d.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("iotod run did not start:\n%s", d.stderr)
	}
	client, err := api.NewClient(d.addr, "")
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		h, err := client.Health(context.Background())
		if assert.NoError(c, err) {
			assert.Equal(c, &api.Health{Status: "ok", Site: "cli-test"}, h)
		}
	}, 10*time.Second, 50*time.Millisecond, "GET /v1/health")
	return d
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.done:
		require.NoError(t, err, "iotod run exit:\n%s", d.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("iotod run did not stop:\n%s", d.stderr)
	}
}

func decode(t *testing.T, r result) map[string]any {
	t.Helper()
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Empty(t, r.stderr)
	var out map[string]any
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&out), r.stdout)
	return out
}

// failsWith checks a failed call: exit 1, nothing on stdout, and one
// "iotod: " line on stderr containing want.
func failsWith(t *testing.T, r result, want string) {
	t.Helper()
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	assert.Regexp(t, `^iotod: [^\n]*\n$`, r.stderr)
	assert.Contains(t, r.stderr, want)
}

const goodConfig = `site: cli-test
schema: schema.json5
storage:
  local: {type: badger, path: data, durability: sync}
api:
  listen: 127.0.0.1:0
  socket: api.sock
`

func TestCLIRoundTrip(t *testing.T) {
	bin := buildIotod(t)
	cfg := writeConfig(t, goodConfig)
	d := startDaemon(t, bin, cfg)
	db := func(args ...string) result {
		return runCLI(t, bin, append([]string{"db"}, append(args, "--addr", d.addr)...)...)
	}

	created := decode(t, db("create", "Account", `{"name": "Acme", "email": "ops@acme.io"}`))
	id, _ := created["id"].(string)
	require.Len(t, id, 26)
	assert.Equal(t, "active", created["status"])

	got := decode(t, db("get", "Account", fmt.Sprintf(`{"id": %q}`, id)))
	assert.Equal(t, created, got)

	// Flags after the arguments; a unix socket named by the config.
	page := decode(t, runCLI(t, bin, "db", "find", "Account", "{}", "--fields", "id,name", "--limit", "5", "-c", cfg))
	assert.Equal(t, []any{map[string]any{"id": id, "name": "Acme"}}, page["items"])

	updated := decode(t, db("update", "Account", fmt.Sprintf(`{"id": %q, "status": "inactive"}`, id)))
	assert.Equal(t, "inactive", updated["status"])
	assert.Equal(t, "Acme", updated["name"])

	count := decode(t, db("find", "Account", "--where", "${status} = {inactive}", "--count"))
	assert.Equal(t, json.Number("1"), count["count"])

	removed := decode(t, db("remove", "Account", fmt.Sprintf(`{"id": %q}`, id)))
	assert.Equal(t, map[string]any{"removed": json.Number("1")}, removed)

	// Numbers pass through exactly, even those a float64 cannot hold.
	r := db("upsert", "User", `{"accountId": "a1", "email": "u@acme.io", "age": 12345678901234567891}`)
	assert.Equal(t, json.Number("12345678901234567891"), decode(t, r)["age"])

	failsWith(t, db("get", "Account", fmt.Sprintf(`{"id": %q}`, id)), "not found")
	failsWith(t, db("create", "User", `{"accountId": "a1"}`), "email")
	failsWith(t, db("create", "Nope", `{}`), `unknown model "Nope"`)
	failsWith(t, db("create", "Account", `{"name": "x", "zip": 1}`), "Account.zip: unknown attribute")
	failsWith(t, db("create", "Account", `{"name": `), "the item is not valid JSON: it ends at line 1, column 10")
	failsWith(t, db("find", "Account", "--limit", "x"), `invalid argument "x" for "--limit"`)
	failsWith(t, runCLI(t, bin, "db", "get", "Account", "{}", "--addr", "127.0.0.1:1"), "cannot reach the iotod API")

	d.stop(t)
	assert.Contains(t, d.stderr.String(), `msg="iotod stopped"`)
	_, err := os.Stat(filepath.Join(filepath.Dir(cfg), "api.sock"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the socket is removed at shutdown")

	// The data survives a restart.
	d = startDaemon(t, bin, cfg)
	decode(t, runCLI(t, bin, "db", "create", "Account", `{"name": "Beta"}`, "--addr", d.addr))
	page = decode(t, runCLI(t, bin, "db", "find", "Account", "--addr", d.addr))
	assert.Len(t, page["items"], 1)
	d.stop(t)
}

func TestCLIBadConfig(t *testing.T) {
	bin := buildIotod(t)
	cfg := writeConfig(t, `site: ${IOTOD_TEST_UNSET_VAR}
schema: schema.json5
storage:
  local: {type: badger, path: data, durability: fast}
api: {listen: "0.0.0.0:7400", port: 1}
`)
	for _, cmd := range []string{"run", "validate"} {
		r := runCLI(t, bin, cmd, "-c", cfg)
		assert.Equal(t, 1, r.code, cmd)
		assert.Empty(t, r.stdout, cmd)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		require.Len(t, lines, 4, "%s: one line per problem:\n%s", cmd, r.stderr)
		assert.Contains(t, lines[0], cfg+":1: site: variable IOTOD_TEST_UNSET_VAR is not set")
		assert.Contains(t, lines[1], cfg+`:4: storage.local.durability: must be "sync" or "async", got "fast"`)
		assert.Contains(t, lines[2], cfg+`:5: api.port: unknown key`)
		assert.Contains(t, lines[3], cfg+`:5: api.listen: "0.0.0.0:7400" is not a loopback address`)
		for _, l := range lines {
			assert.True(t, strings.HasPrefix(l, "iotod: "), l)
		}
		_, err := os.Stat(filepath.Join(filepath.Dir(cfg), "data"))
		assert.ErrorIs(t, err, os.ErrNotExist, "%s: no data is touched", cmd)
	}

	// A good config with a broken schema: every schema fault, no data.
	cfg = writeConfig(t, goodConfig)
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(cfg), "schema.json5"),
		[]byte(`{format: 'onetable:1.1.0', version: '1', indexes: {primary: {hash: 'pk'}}, models: {A: {pk: {type: 'strin'}}, B: {x: {type: 'number', enum: 3}}}}`), 0o600))
	r := runCLI(t, bin, "run", "-c", cfg)
	assert.Equal(t, 1, r.code)
	assert.GreaterOrEqual(t, strings.Count(r.stderr, "\niotod: ")+1, 2, "every schema fault:\n%s", r.stderr)
	assert.Contains(t, r.stderr, "models.A.pk.type")
	_, err := os.Stat(filepath.Join(filepath.Dir(cfg), "data"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no data is touched")
}

func TestCLIValidate(t *testing.T) {
	bin := buildIotod(t)
	cfg := writeConfig(t, goodConfig)
	dir := filepath.Dir(cfg)
	r := runCLI(t, bin, "validate", "-c", cfg)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "ok: "+cfg+"\n"+
		"  site       cli-test\n"+
		"  schema     "+filepath.Join(dir, "schema.json5")+" (models Account, User)\n"+
		"  storage    local: badger, device side, site cli-test\n"+
		"  api        http://127.0.0.1:0\n"+
		"  api        unix:"+filepath.Join(dir, "api.sock")+"\n", r.stdout)

	r = runCLI(t, bin, "validate", "-c", filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no such file")
}
