package e2e

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binDir holds the iotod binary built for this test run.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "iotod-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// iotodBin builds the iotod binary once per test run and returns its path;
// it skips t under -short.
func iotodBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds iotod and runs it as separate processes")
	}
	binOnce.Do(func() {
		binPath = filepath.Join(binDir, "iotod")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/iotod").CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

var (
	httpbusOnce sync.Once
	httpbusPath string
	httpbusErr  error
)

// httpbusBin builds the example external transport (examples/plugins/httpbus).
func httpbusBin(t *testing.T) string {
	t.Helper()
	iotodBin(t)
	httpbusOnce.Do(func() {
		httpbusPath = filepath.Join(binDir, "httpbus")
		out, err := exec.Command("go", "build", "-o", httpbusPath, "../examples/plugins/httpbus").CombinedOutput()
		if err != nil {
			httpbusErr = fmt.Errorf("go build httpbus: %w\n%s", err, out)
		}
	})
	if httpbusErr != nil {
		t.Fatal(httpbusErr)
	}
	return httpbusPath
}

// freeAddr returns a loopback host:port nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// schemaPath is the tests' schema, as an absolute path.
func schemaPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("testdata/schema.json5")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
