package api_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
)

func TestStartTCPAndSocket(t *testing.T) {
	ctx := context.Background()
	srv, err := api.NewServer(api.Options{DB: openDB(t), Site: "s1"})
	require.NoError(t, err)
	sock := filepath.Join(t.TempDir(), "run", "api.sock")
	require.NoError(t, srv.Start(ctx, "127.0.0.1:0", sock))
	require.ErrorContains(t, srv.Start(ctx, "127.0.0.1:0", ""), "started already")
	addrs := srv.Addrs()
	require.Len(t, addrs, 2)
	assert.Equal(t, "tcp", addrs[0].Network())
	assert.Equal(t, "unix", addrs[1].Network())

	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "only the owner may use the socket")

	for _, c := range []struct{ addr, socket string }{{addrs[0].String(), ""}, {"", sock}} {
		client, err := api.NewClient(c.addr, c.socket)
		require.NoError(t, err)
		h, err := client.Health(ctx)
		require.NoError(t, err)
		assert.Equal(t, "s1", h.Site)
	}

	// Over the socket, any Host is fine: no browser can reach it.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(http.MethodGet, "http://evil.example/v1/health", nil)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	hc.CloseIdleConnections()

	// A second server cannot take a live socket.
	other, err := api.NewServer(api.Options{DB: openDB(t)})
	require.NoError(t, err)
	require.ErrorContains(t, other.Start(ctx, "", sock), "another process is serving on it")

	require.NoError(t, srv.Shutdown(ctx))
	require.NoError(t, srv.Shutdown(ctx), "shutdown twice is fine")
	_, err = os.Stat(sock)
	assert.ErrorIs(t, err, os.ErrNotExist, "the socket file is removed")
	select {
	case err := <-srv.Err():
		t.Fatalf("serving failed: %v", err)
	default:
	}
}

func TestStartSocketErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	// A stale socket, left by a crash, is replaced.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, ln.Close())
	srv, err := api.NewServer(api.Options{DB: openDB(t)})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx, "", stale))
	require.NoError(t, srv.Shutdown(ctx))

	// A regular file is never removed.
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("data"), 0o600))
	srv, err = api.NewServer(api.Options{DB: openDB(t)})
	require.NoError(t, err)
	require.ErrorContains(t, srv.Start(ctx, "", file), "exists and is not a socket")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "data", string(data))

	// A busy TCP port fails Start before the socket is made.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = busy.Close() }()
	sock := filepath.Join(dir, "ok.sock")
	require.ErrorContains(t, srv.Start(ctx, busy.Addr().String(), sock), "listen on")
	_, err = os.Stat(sock)
	assert.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, srv.Start(ctx, "", ""), "nothing to listen on")
}

// TestListenThenServe: Listen binds before a server exists (a port in use
// fails there, naming it); Serve serves on what it bound, once; Close after
// Shutdown has nothing left to close.
func TestListenThenServe(t *testing.T) {
	ctx := context.Background()
	l, err := api.Listen(ctx, "127.0.0.1:0", "")
	require.NoError(t, err)
	addr := l.Addrs()[0].String()
	_, err = api.Listen(ctx, addr, "")
	require.ErrorContains(t, err, "api: listen on "+addr+": ")

	srv, err := api.NewServer(api.Options{DB: openDB(t), Site: "s1"})
	require.NoError(t, err)
	require.NoError(t, srv.Serve(l))
	require.ErrorContains(t, srv.Serve(l), "started already")
	c, err := api.NewClient(addr, "")
	require.NoError(t, err)
	h, err := c.Health(ctx)
	require.NoError(t, err)
	assert.Equal(t, "s1", h.Site)
	require.NoError(t, srv.Shutdown(ctx))
	assert.NoError(t, l.Close())
}
