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
		"exhaust a 32-bit address space; build for a 64-bit GOARCH such as arm64 or amd64",
		bits, runtime.GOOS, runtime.GOARCH)
}

// checkPlatform applies checkWordSize to the running build.
func checkPlatform() error {
	if err := checkWordSize(strconv.IntSize); err != nil {
		return err
	}
	return checkWordSize(int(unsafe.Sizeof(uintptr(0))) * 8)
}
