//go:build !linux

package badger

import "os"

// fdatasync flushes f's data; off Linux it is a full fsync.
func fdatasync(f *os.File) error { return f.Sync() }
