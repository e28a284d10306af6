//go:build device && !(386 || arm || mips || mipsle)

package bench

import (
	"context"
	"errors"

	"github.com/iotod/iotod/pipeline"
)

// A 64-bit device build has badger alone: no SQLite store, no raw SQLite
// baseline (raw_sqlite.go). `bench db --store sqlite` says so.
var errNoSQLite = errors.New(`bench db: storage type "sqlite" is not in this device build (64-bit device builds include badger, not sqlite; the full build, iotod, has both: iotod bench db --store sqlite)`)

func openSQLiteStore(context.Context, string, string) (pipeline.Store, error) {
	return nil, errNoSQLite
}

func rawSQLiteBaseline() (baseline, error) { return baseline{}, errNoSQLite }
