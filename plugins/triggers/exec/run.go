package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	osexec "os/exec"
	"time"
)

// waitDelay is how long a run that exited, or was killed, may keep its
// output pipes open (through a child that left the process group) before
// they are closed on it.
const waitDelay = time.Second

// result is what a successful run leaves.
type result struct {
	duration    time.Duration
	stdout      []byte // the last outputKept bytes
	stdoutBytes int64
}

// run runs the command once with stdin and env. It waits at most the
// timeout for a free slot, then runs at most the timeout; ctx ends both.
func (t *Trigger) run(ctx context.Context, stdin []byte, env []string) (result, error) {
	if err := t.acquire(ctx); err != nil {
		return result{}, err
	}
	defer func() { <-t.slots }()

	runCtx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	cmd := osexec.CommandContext(runCtx, t.argv[0], t.argv[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdin = t.dir, env, bytes.NewReader(stdin)
	stdout, stderr := newTail(outputKept), newTail(outputKept)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	ownGroup(cmd)

	start := time.Now()
	err := cmd.Run()
	res := result{duration: time.Since(start)}
	res.stdout, res.stdoutBytes = stdout.Bytes()
	_ = killGroup(cmd) // whatever the command left behind in its group
	if errors.Is(err, osexec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil // the command succeeded; a child kept its output open
	}
	if err == nil {
		return res, nil
	}
	errOut, _ := stderr.Bytes()
	return res, t.failure(ctx, runCtx, err, errOut, res.duration)
}

// acquire takes a run slot, waiting at most the timeout.
func (t *Trigger) acquire(ctx context.Context) error {
	select {
	case t.slots <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(t.timeout)
	defer timer.Stop()
	select {
	case t.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("exec trigger: command %s: not started: %w", t.name, ctx.Err())
	case <-timer.C:
		return fmt.Errorf("exec trigger: command %s: not started: no free run slot within %s (all %d busy)", t.name, t.timeout, cap(t.slots))
	}
}

// failure describes a failed run: what happened, the exit status, and the
// end of stderr.
func (t *Trigger) failure(ctx, runCtx context.Context, err error, errOut []byte, took time.Duration) error {
	var what string
	status := "" // "exit status 3", "signal: killed"
	var exitErr *osexec.ExitError
	if errors.As(err, &exitErr) {
		status = exitErr.ProcessState.String()
	}
	switch {
	case ctx.Err() != nil:
		what = fmt.Sprintf("stopped after %s (%s), process group killed (%s)", took.Round(time.Millisecond), ctx.Err(), status)
		err = errors.Join(ctx.Err(), err)
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		what = fmt.Sprintf("timed out after %s, process group killed (%s)", t.timeout, status)
		err = errors.Join(context.DeadlineExceeded, err)
	case status != "":
		what = status
	case errors.Is(err, osexec.ErrWaitDelay):
		what = "its output stayed open after it exited"
	default:
		what = "could not start: " + err.Error()
	}
	msg := fmt.Sprintf("exec trigger: command %s: %s", t.name, what)
	if s := lastBytes(errOut, stderrInError); s != "" {
		msg += "; stderr: " + s
	}
	return &runError{msg: msg, err: err}
}

// runError is a failed run: its text says it all, and it wraps the cause
// (an *exec.ExitError, context.DeadlineExceeded, ctx.Err()) for errors.Is
// and errors.As.
type runError struct {
	msg string
	err error
}

func (e *runError) Error() string { return e.msg }
func (e *runError) Unwrap() error { return e.err }
