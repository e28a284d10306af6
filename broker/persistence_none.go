//go:build device && (386 || arm || mips || mipsle)

package broker

import (
	"errors"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// A 32-bit device build leaves badger out (it cannot run on 32-bit), and
// with it the broker's persistence (persistence.go): its sessions live in
// memory.
var errNoPersistence = errors.New("badger is not in this device build (32-bit device builds include sqlite, not badger, which needs a 64-bit platform)")

func checkPersistence() error { return errNoPersistence }

func addPersistence(*mqtt.Server, string) error { return errNoPersistence }
