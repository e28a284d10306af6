package badger

import (
	"fmt"
	"runtime"
	"strconv"
	"unsafe"
)

// checkWordSize refuses a platform whose word size (in bits) is not 64.
// Badger v4.9.6 silently corrupts its tables on 32-bit builds (an overflow
// in its ristretto dependency), and its value log and memtable files are
// memory-mapped at sizes that exhaust a 32-bit address space.
func checkWordSize(bits int) error {
	if bits == 64 {
		return nil
	}
	return fmt.Errorf("badger storage needs a 64-bit platform, this is a %d-bit build (%s/%s): "+
		"badger v4.9.6 silently corrupts its tables on 32-bit builds and its memory-mapped logs "+
		"exhaust a 32-bit address space; use a storage of type sqlite on a 32-bit device, or build for a 64-bit GOARCH such as arm64 or amd64",
		bits, runtime.GOOS, runtime.GOARCH)
}

// CheckPlatform says whether badger may run on this build: an error on a
// 32-bit platform, where the store, the broker's persistence and anything
// else on badger must not open (use type: sqlite for a 32-bit device).
func CheckPlatform() error {
	if err := checkWordSize(strconv.IntSize); err != nil {
		return err
	}
	return checkWordSize(int(unsafe.Sizeof(uintptr(0))) * 8)
}
