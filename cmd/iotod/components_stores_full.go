//go:build !device

package main

import (
	"fmt"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/plugins/storage/sqlite"
)

// The full build has both device stores, on every platform (badger
// refuses to open on a 32-bit one: badger.CheckPlatform).
func deviceStorage() []pipeline.Factory {
	return []pipeline.Factory{badger.NewFactory(), sqlite.NewFactory()}
}

func deviceOmitted() []pipeline.Omitted { return nil }

// defaultDeviceStore is the device store this build runs: badger on a
// 64-bit build, sqlite on a 32-bit one, where badger refuses to open.
func defaultDeviceStore() string {
	if badger.CheckPlatform() != nil {
		return sqlite.TypeName
	}
	return badger.TypeName
}

// checkDeviceStore is nil when store is a device store this build has and
// that runs here.
func checkDeviceStore(store string) error {
	switch store {
	case badger.TypeName:
		return badger.CheckPlatform()
	case sqlite.TypeName:
		return nil
	}
	return fmt.Errorf("%w: want badger or sqlite", pipeline.ErrInvalid)
}
