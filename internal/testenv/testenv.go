// Package testenv holds the checks tests make of the platform they run on.
package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/plugins/storage/sqlite"
)

// NeedBadger skips a test that opens a badger store (a device store, the
// broker's persistence) on a platform where badger refuses to open: a
// 32-bit build. The refusal itself is tested where it is made.
func NeedBadger(t testing.TB) {
	t.Helper()
	if err := badger.CheckPlatform(); err != nil {
		t.Skipf("needs the badger storage: %v", err)
	}
}

// StoreEnv names the environment variable that chooses the device store
// the store-independent tests run on: "badger" (the default on 64-bit
// builds) or "sqlite" (the default on 32-bit builds, where badger refuses
// to open).
const StoreEnv = "IOTOD_TEST_STORE"

// StoreType is the device store the store-independent tests run on.
func StoreType() string {
	if s := os.Getenv(StoreEnv); s != "" {
		return s
	}
	if badger.CheckPlatform() != nil {
		return sqlite.TypeName
	}
	return badger.TypeName
}

// OpenStore opens the device store of StoreType in dir (created if
// needed), failing t if it cannot, and closes it when t ends.
func OpenStore(t testing.TB, dir string) pipeline.Store {
	t.Helper()
	var st pipeline.Store
	var err error
	switch StoreType() {
	case badger.TypeName:
		NeedBadger(t)
		cfg := badger.NewDefaultConfig()
		cfg.Path = dir
		st, err = badger.Open(context.Background(), cfg, nil)
	case sqlite.TypeName:
		cfg := sqlite.NewDefaultConfig()
		cfg.Path = filepath.Join(dir, "iotod.db")
		st, err = sqlite.Open(context.Background(), cfg, nil)
	default:
		t.Fatalf("%s=%q: want badger or sqlite", StoreEnv, StoreType())
	}
	if err != nil {
		t.Fatalf("open the %s store in %s: %v", StoreType(), dir, err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}
