package exec

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNonZeroExitNamesCommandStatusAndStderrEnd(t *testing.T) {
	// 3000 bytes of "early" noise, then the last words: only the end is quoted.
	tr, _ := newTrigger(t, `i=0; while [ $i -lt 500 ]; do printf early >&2; i=$((i+1)); done
echo >&2; echo "disk full: cannot write" >&2; exit 3`, nil)
	err := tr.Fire(t.Context(), "ingest", changes())
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, `exec trigger: command ["/bin/sh"`)
	require.Contains(t, msg, "hook.sh")
	require.Contains(t, msg, "exit status 3")
	require.True(t, strings.HasSuffix(msg, "disk full: cannot write"), msg)
	require.Less(t, len(msg), 1300, "at most the last 1KB of stderr")
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	require.Equal(t, 3, exitErr.ExitCode())
}

func TestStartFailure(t *testing.T) {
	tr, dir := newTrigger(t, "", nil)
	tr.argv[0] = filepath.Join(dir, "gone")
	err := tr.Fire(t.Context(), "ingest", changes())
	require.ErrorContains(t, err, "could not start")
	require.ErrorContains(t, err, "hook.sh", "the command as configured")
}

// gone reports whether pid has exited (a zombie not yet reaped counts).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return os.IsNotExist(err)
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}

func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checks process groups through /proc")
	}
	// The shell starts a child sleep (holding stdout open too), notes its
	// pid, and waits.
	tr, dir := newTrigger(t, `sleep 100 & echo $! > "$OUT/child"; echo "about to wait" >&2; wait`,
		func(c *Config) { c.Timeout = 300 * time.Millisecond })
	start := time.Now()
	err := tr.Fire(t.Context(), "ingest", changes())
	took := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "timed out after 300ms, process group killed (signal: killed)")
	require.ErrorContains(t, err, "stderr: about to wait")
	require.GreaterOrEqual(t, took, 300*time.Millisecond)
	require.Less(t, took, 300*time.Millisecond+waitDelay, "returns at the timeout, not after the wait delay")

	child, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(dir, "child"))))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return gone(child) }, 5*time.Second, 10*time.Millisecond,
		"the shell's child sleep %d is killed with it", child)
}

func TestCancelStopsTheRun(t *testing.T) {
	tr, dir := newTrigger(t, `touch "$OUT/started"; exec sleep 100`, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tr.Fire(ctx, "ingest", changes()) }()
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "started"))
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "process group killed")
	case <-time.After(5 * time.Second):
		t.Fatal("Fire did not return after its ctx was cancelled")
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	// Each run notes how many runs are going as it starts, then holds its
	// slot until the test releases them all.
	tr, dir := newTrigger(t, `touch "$OUT/running.$$" "$OUT/started.$$"
ls "$OUT" | grep -c '^running' > "$OUT/seen.$$"
while [ ! -e "$OUT/release" ]; do sleep 0.01; done
rm "$OUT/running.$$"`, func(c *Config) { c.MaxConcurrency = 2 })
	count := func(prefix string) int {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		n := 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				n++
			}
		}
		return n
	}
	const calls = 6
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() { errs <- tr.Fire(t.Context(), "ingest", changes()) })
	}
	require.Eventually(t, func() bool { return count("started.") == 2 }, 5*time.Second, 5*time.Millisecond)
	require.Len(t, tr.slots, 2, "both slots taken")
	require.Len(t, errs, 0, "the other calls wait for a slot")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "release"), nil, 0o600))
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, calls, count("started."))
	entries, err := filepath.Glob(filepath.Join(dir, "seen.*"))
	require.NoError(t, err)
	require.Len(t, entries, calls)
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimSpace(readFile(t, e)))
		require.NoError(t, err)
		require.LessOrEqual(t, n, 2, "runs going at once")
	}
}

func TestNoFreeSlotWithinTimeout(t *testing.T) {
	tr, _ := newTrigger(t, `true`, func(c *Config) {
		c.MaxConcurrency = 1
		c.Timeout = 50 * time.Millisecond
	})
	tr.slots <- struct{}{} // a run that does not end
	err := tr.Fire(t.Context(), "ingest", changes())
	require.ErrorContains(t, err, "no free run slot within 50ms (all 1 busy)")
}

func TestOutputIsBounded(t *testing.T) {

	tr, _ := newTrigger(t, `head -c 5000000 /dev/zero | tr '\0' o; head -c 3000000 /dev/zero | tr '\0' e >&2; echo >&2; echo last line >&2; exit 1`, nil)
	res, err := tr.run(t.Context(), nil, nil)
	require.ErrorContains(t, err, "exit status 1")
	require.True(t, strings.HasSuffix(err.Error(), "eee\nlast line"), "the end of stderr")
	require.Less(t, len(err.Error()), 1300)
	require.Len(t, res.stdout, outputKept, "stdout: only the end is kept")
	require.EqualValues(t, 5000000, res.stdoutBytes)
	require.Equal(t, strings.Repeat("o", 10), string(res.stdout[:10]))

	// And a run that succeeds keeps as little.
	tr, _ = newTrigger(t, `head -c 3000000 /dev/zero`, nil)
	res, err = tr.run(t.Context(), nil, nil)
	require.NoError(t, err)
	require.Len(t, res.stdout, outputKept)

}

func TestTail(t *testing.T) {
	tl := newTail(8)
	for _, w := range []string{"abc", "defgh", "ij", "0123456789xyz", "Z"} {
		n, err := tl.Write([]byte(w))
		require.NoError(t, err)
		require.Equal(t, len(w), n)
	}
	got, total := tl.Bytes()
	require.Equal(t, "6789xyzZ", string(got))
	require.EqualValues(t, 24, total)
	require.LessOrEqual(t, cap(tl.buf), 16)
}
