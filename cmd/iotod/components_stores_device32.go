//go:build device && (386 || arm || mips || mipsle)

package main

import (
	"fmt"
	"unsafe"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/sqlite"
)

// A 32-bit device build has SQLite alone: badger refuses to run on 32-bit
// builds, so it is left out, with the embedded broker's persistence
// (broker/persistence_none.go) and the benchmarks (bench_none.go).

// This file must only build where a pointer is 32 bits: a 64-bit GOARCH
// in the constraint above fails here, at compile time.
var _ [4 - unsafe.Sizeof(uintptr(0))]byte

const badgerOmitted = "not in this device build (32-bit device builds include sqlite, not badger, which cannot run on 32-bit)"

func deviceStorage() []pipeline.Factory { return []pipeline.Factory{sqlite.NewFactory()} }

func deviceOmitted() []pipeline.Omitted {
	return []pipeline.Omitted{omittedStore("badger", badgerOmitted)}
}

func defaultDeviceStore() string { return sqlite.TypeName }

// checkDeviceStore is nil when store is a device store this build has.
func checkDeviceStore(store string) error {
	if err := checkOmittedStore(store); err != nil {
		return err
	}
	if store == sqlite.TypeName {
		return nil
	}
	return fmt.Errorf("%w: want sqlite, the store of this 32-bit device build", pipeline.ErrInvalid)
}
