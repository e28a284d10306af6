//go:build unix

package exec

import (
	"errors"
	osexec "os/exec"
	"syscall"
)

// ownGroup starts cmd as the leader of a new process group, and makes a
// cancelled or timed-out run kill that whole group (the command and every
// child it started that stayed in the group), not just the command.
func ownGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
}

// killGroup kills cmd's process group; a group already gone is no error.
func killGroup(cmd *osexec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
