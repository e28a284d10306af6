//go:build !unix

package exec

import osexec "os/exec"

// ownGroup: without process groups, a cancelled run kills the command only.
func ownGroup(cmd *osexec.Cmd) {}

// killGroup: without process groups there is nothing more to kill.
func killGroup(cmd *osexec.Cmd) error { return nil }
