package external

import "syscall"

// alive reports whether process pid exists (and is not a zombie reaped).
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }
