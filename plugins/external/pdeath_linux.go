package external

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the plugin when iotod dies, even
// by SIGKILL: no orphan plugin outlives it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
