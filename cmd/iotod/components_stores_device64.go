//go:build device && !(386 || arm || mips || mipsle)

package main

import (
	"fmt"
	"unsafe"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
)

// A 64-bit device build has badger alone: without SQLite (modernc.org/sqlite,
// about 3.5 MB of the binary) it stays under P8's 25 MiB.

// This file must only build where a pointer is 64 bits: a 32-bit GOARCH
// missing from the constraint above fails here, at compile time.
var _ [unsafe.Sizeof(uintptr(0)) - 8]byte

const sqliteOmitted = "not in this device build (64-bit device builds include badger, not sqlite; the full build, iotod, has both)"

func deviceStorage() []pipeline.Factory { return []pipeline.Factory{badger.NewFactory()} }

func deviceOmitted() []pipeline.Omitted {
	return []pipeline.Omitted{omittedStore("sqlite", sqliteOmitted)}
}

func defaultDeviceStore() string { return badger.TypeName }

// checkDeviceStore is nil when store is a device store this build has and
// that runs here.
func checkDeviceStore(store string) error {
	if err := checkOmittedStore(store); err != nil {
		return err
	}
	if store == badger.TypeName {
		return badger.CheckPlatform()
	}
	return fmt.Errorf("%w: want badger, the store of this 64-bit device build", pipeline.ErrInvalid)
}
