package mqtt

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

// mosquittoProc is a mosquitto process a test starts, kills and starts
// again on the same port.
type mosquittoProc struct {
	t    *testing.T
	bin  string
	conf string
	addr string
	url  string
	cmd  *exec.Cmd
}

// startMosquitto starts mosquitto on a free loopback port, with extra
// config lines, skipping t when it is not installed (make test installs
// it).
func startMosquitto(t *testing.T, extra ...string) *mosquittoProc {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			t.Skip("mosquitto is not installed (make test installs it: scripts/services.sh start)")
		}
		bin = "/usr/sbin/mosquitto"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	text := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n", port)
	if os.Geteuid() == 0 {
		text += "user root\n"
	}
	for _, line := range extra {
		text += line + "\n"
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &mosquittoProc{t: t, bin: bin, conf: conf, addr: addr, url: "mqtt://" + addr}
	m.start()
	t.Cleanup(m.kill)
	return m
}

// start runs mosquitto and waits until it accepts connections.
func (m *mosquittoProc) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func(cmd *exec.Cmd) { exited <- cmd.Wait() }(m.cmd)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", m.addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return
		}
		select {
		case err := <-exited:
			m.t.Fatalf("mosquitto exited at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto not listening on %s after 10s", m.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the process with SIGKILL (a crash, not a clean shutdown).
func (m *mosquittoProc) kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	for range 100 {
		if err := m.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.cmd = nil
}
