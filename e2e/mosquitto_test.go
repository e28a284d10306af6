package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// mosquittoACL lets a device (username = site) use only its own topics,
// and the cloud user every iotod topic, as the embedded broker does.
const mosquittoACL = `pattern write iotod/%u/up
pattern write iotod/%u/down-ack
pattern write iotod/%u/sync
pattern read iotod/%u/down
pattern read iotod/%u/up-ack
pattern read iotod/all/down
user ` + cloudUser + `
topic readwrite iotod/#
`

// mosquitto is a mosquitto process of one test, which it can kill and
// start again on the same port.
type mosquitto struct {
	t    *testing.T
	bin  string
	conf string
	addr string
	cmd  *exec.Cmd
	done chan error
}

// haveMosquitto reports whether the tests run against mosquitto too:
// IOTOD_MOSQUITTO_URL is set (make test starts it) and the binary exists.
func haveMosquitto() (string, bool) {
	if os.Getenv("IOTOD_MOSQUITTO_URL") == "" {
		return "", false
	}
	if bin, err := exec.LookPath("mosquitto"); err == nil {
		return bin, true
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", true
	}
	return "", false
}

// startMosquitto starts a mosquitto of the test's own on a free port, with
// the per-site ACL and no persistence (a restart forgets every session).
func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	bin, ok := haveMosquitto()
	if !ok {
		t.Skip("mosquitto: IOTOD_MOSQUITTO_URL is not set or mosquitto is not installed (make test sets both)")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte(mosquittoACL), 0o600); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`listener %s 127.0.0.1
allow_anonymous true
acl_file %s
persistence false
max_inflight_messages 100
max_queued_messages 200000
log_dest file %s
`, port, acl, filepath.Join(dir, "mosquitto.log"))
	if os.Geteuid() == 0 {
		text += "user root\n"
	}
	m := &mosquitto{t: t, bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), addr: addr}
	if err := os.WriteFile(m.conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(m.kill)
	return m
}

func (m *mosquitto) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	m.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(m.cmd, m.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", m.addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return
		}
		select {
		case err := <-m.done:
			m.t.Fatalf("mosquitto exited at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto not listening on %s after 10s", m.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops mosquitto with SIGKILL (no-op when it is not running).
func (m *mosquitto) kill() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	m.cmd = nil
}
