//go:build !device || !(386 || arm || mips || mipsle)

package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	badgerhook "github.com/mochi-mqtt/server/v2/hooks/storage/badger"

	"github.com/iotod/iotod/pipeline"
	badgerstore "github.com/iotod/iotod/plugins/storage/badger"
)

// The broker keeps sessions, retained and in-flight messages in badger
// when its config names a persistence folder. A 32-bit device build leaves
// badger out, and with it this persistence: persistence_none.go.

// checkPersistence is nil when this build can persist sessions: badger
// refuses a 32-bit platform.
func checkPersistence() error { return badgerstore.CheckPlatform() }

// addPersistence adds the badger hook keeping the server's state in dir.
func addPersistence(server *mqtt.Server, dir string) error {
	return server.AddHook(new(badgerhook.Hook), persistence(dir))
}

// persistenceMemory is the memory budget of the broker's badger
// persistence (sessions, retained and in-flight messages).
const persistenceMemory = 16 * pipeline.Megabyte

// persistence is the badger hook's options: the badger storage's options
// for persistenceMemory (2 MiB write tables, bounded table builders), writes
// not fsynced (a process crash loses nothing; a power cut may lose the last
// messages).
func persistence(dir string) *badgerhook.Options {
	opts := badgerstore.Options(dir, persistenceMemory)
	return &badgerhook.Options{Path: dir, Options: &opts}
}
