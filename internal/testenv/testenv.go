// Package testenv holds the checks tests make of the platform they run on.
package testenv

import (
	"testing"

	"github.com/iotod/iotod/plugins/storage/badger"
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
