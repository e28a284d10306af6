//go:build !unix

package onetable

// lockFile: without file locks, installs are serialised within one process only.
func lockFile(string) (func(), error) { return func() {}, nil }
