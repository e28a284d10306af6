//go:build !linux

package external

import "os/exec"

// dieWithParent does nothing where there is no parent-death signal: a
// plugin then exits when its connection to iotod breaks (go-plugin).
func dieWithParent(*exec.Cmd) {}
