package badger

import "testing"

// needBadger skips a test that opens a store on a platform where Open
// refuses to (TestCheckWordSize checks the refusal).
func needBadger(tb testing.TB) {
	tb.Helper()
	if err := CheckPlatform(); err != nil {
		tb.Skipf("needs the badger storage: %v", err)
	}
}
