package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iotod/iotod/api"
)

// node is one `iotod run` process with its own folder (config, data, log).
type node struct {
	t    *testing.T
	name string
	dir  string
	cfg  string
	env  []string
	// args, when set, are the iotod arguments instead of run -c cfg.
	args []string
	// logDir, when set, holds the log instead of dir.
	logDir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
	log  *os.File
	addr string
}

var servingRE = regexp.MustCompile(`msg="iotod serving".* addr=(\S+)`)

// startNode writes config into a folder of its own and runs iotod on it.
func startNode(t *testing.T, name, config string, env ...string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, name: name, dir: dir, cfg: filepath.Join(dir, "iotod.yaml"), env: env}
	if err := os.WriteFile(n.cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			n.dumpLog()
		}
	})
	n.start()
	return n
}

// startIn runs iotod with args in dir (whose files it uses as they are).
func startIn(t *testing.T, name, dir string, args []string, env ...string) *node {
	t.Helper()
	return startLogged(t, name, dir, dir, args, env...)
}

// startLogged is startIn with the node's log in logDir.
func startLogged(t *testing.T, name, dir, logDir string, args []string, env ...string) *node {
	t.Helper()
	n := &node{t: t, name: name, dir: dir, logDir: logDir, env: env, args: args}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			n.dumpLog()
		}
	})
	n.start()
	return n
}

// start runs the process and waits until its API answers.
func (n *node) start() {
	n.t.Helper()
	bin := iotodBin(n.t)
	log, err := os.OpenFile(n.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	args := n.args
	if args == nil {
		args = []string{"run", "-c", n.cfg}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = n.dir
	cmd.Env = append(os.Environ(), n.env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	cmd.Stdout = log
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("%s: start: %v", n.name, err)
	}
	done := make(chan error, 1)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			_, _ = log.WriteString(line + "\n")
			if m := servingRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		done <- cmd.Wait()
		_ = log.Close()
	}()
	n.mu.Lock()
	n.cmd, n.done, n.log = cmd, done, log
	n.mu.Unlock()
	select {
	case addr := <-found:
		n.mu.Lock()
		n.addr = addr
		n.mu.Unlock()
	case err := <-done:
		done <- err
		n.t.Fatalf("%s: iotod run exited at start: %v\n%s", n.name, err, n.tail(40))
	case <-time.After(30 * time.Second):
		n.t.Fatalf("%s: iotod run did not start in 30s\n%s", n.name, n.tail(40))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := n.client().Health(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: API does not answer: %v", n.name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.awaitPipelines()
}

// awaitPipelines waits until no pipeline is starting any more: iotod run
// serves its API before its pipelines subscribe, and a message published
// before a subscription exists is not delivered to it. With the broker
// unreachable, pipelines run at once and subscribe when it comes.
func (n *node) awaitPipelines() {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := n.client().Status(ctx)
		cancel()
		starting := ""
		if err == nil {
			for _, p := range st.Pipelines {
				if p.State == "starting" {
					starting = p.Name
				}
			}
			if starting == "" {
				return
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: pipelines still starting after 20s (%s; %v)\n%s", n.name, starting, err, n.tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether the process is up.
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// kill sends SIGKILL and waits for the process to go (no-op when stopped).
func (n *node) kill() { n.signal(syscall.SIGKILL, false) }

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() {
	n.t.Helper()
	n.signal(syscall.SIGTERM, true)
}

func (n *node) signal(sig syscall.Signal, wantClean bool) {
	n.t.Helper()
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case err := <-done:
		if wantClean && err != nil {
			n.t.Errorf("%s: iotod run exit after %s: %v\n%s", n.name, sig, err, n.tail(30))
		}
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		n.t.Errorf("%s: did not exit within 40s of %s\n%s", n.name, sig, n.tail(30))
	}
}

// restart starts the process again on the same folder and config.
func (n *node) restart() {
	n.t.Helper()
	n.kill()
	n.start()
}

// client is an API client of the node's local store.
func (n *node) client() *api.Client {
	n.mu.Lock()
	addr := n.addr
	n.mu.Unlock()
	c, err := api.NewClient(addr, "")
	if err != nil {
		n.t.Fatal(err)
	}
	return c
}

// store is an API client of another store of the node (?storage=NAME).
func (n *node) store(name string) *api.Client {
	c := n.client()
	c.Storage = name
	return c
}

// cli runs an iotod command against this node's API and returns stdout.
func (n *node) cli(args ...string) (string, error) {
	n.mu.Lock()
	addr := n.addr
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, iotodBin(n.t), append(args, "--addr", addr)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("iotod %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// sync runs `iotod sync` against the node and fails the test unless it
// prints "synced".
func (n *node) sync(timeout time.Duration) {
	n.t.Helper()
	out, err := n.cli("sync", "--timeout", timeout.String())
	if err != nil || strings.TrimSpace(out) != "synced" {
		n.t.Fatalf("%s: iotod sync: %v %q\n%s", n.name, err, out, n.tail(30))
	}
}

// logText is the node's whole log so far.
func (n *node) logText() string {
	b, _ := os.ReadFile(n.logPath())
	return string(b)
}

func (n *node) logPath() string {
	if n.logDir != "" {
		return filepath.Join(n.logDir, n.name+".log")
	}
	return filepath.Join(n.dir, n.name+".log")
}

// tail is the last lines of the node's log.
func (n *node) tail(lines int) string {
	all := strings.Split(strings.TrimRight(n.logText(), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func (n *node) dumpLog() {
	n.t.Logf("--- %s log (%s), last lines:\n%s", n.name, n.dir, n.tail(60))
}

// metric sums the series of the named metric on the node's /metrics
// whose line contains every match, such as `pipeline="up"` (0 when
// absent).
func (n *node) metric(name string, match ...string) float64 {
	n.t.Helper()
	n.mu.Lock()
	addr := n.addr
	n.mu.Unlock()
	resp, err := http.Get(addr + "/metrics")
	if err != nil {
		n.t.Fatalf("%s: GET /metrics: %v", n.name, err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") || !containsAll(line, match) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
