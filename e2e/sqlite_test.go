package e2e

import (
	"testing"
	"time"
)

// TestSQLiteAndBadgerDevicesWithTheWorkerKilled runs a device on SQLite
// and one on badger against a cloud worker behind the embedded broker (in
// a process of its own), with a write load both ways for each device, and
// SIGKILLs the worker mid-stream, several times: each device converges
// with the cloud (nothing lost, nothing applied twice, nothing echoed
// back to the device that wrote it). Several workers need a shared cloud
// store (DynamoDB; PostgreSQL is not built yet): each badger worker has
// its own.
func TestSQLiteAndBadgerDevicesWithTheWorkerKilled(t *testing.T) {
	r := newRig(t, ownProcess, 1, "dev-b", "dev-s-sqlite")
	devB, devS := r.devices["dev-b"], r.devices["dev-s-sqlite"]
	upB, downB := readingLoad(t, devB, "dev-b", 2), commandLoad(t, r.cloud(), "dev-b", 1)
	upS, downS := readingLoad(t, devS, "dev-s-sqlite", 2), commandLoad(t, r.cloud(), "dev-s-sqlite", 1)
	for range kills {
		time.Sleep(loadPhase)
		r.cloud().kill()
		time.Sleep(300 * time.Millisecond)
		r.cloud().start()
	}
	time.Sleep(loadPhase)
	converge(t, "badger device", devB, r.cloud(), upB, downB)
	converge(t, "sqlite device", devS, r.cloud(), upS, downS)
}
