package postgres

import (
	"testing"

	"github.com/iotod/iotod/pipeline/plugintest"
)

// The PostgreSQL store keeps the whole storage contract: an outbox, no
// bound on the writes of an Update, empty keys (bytea), expiry to the
// millisecond. So every StoreFeatures is zero.
func TestStoreConformance(t *testing.T) {
	pgURL(t)
	plugintest.TestStore(t, suiteOpener(nil))
}

// Without listen (no LISTEN connection, no pg_notify), the same.
func TestStoreConformanceWithoutListen(t *testing.T) {
	pgURL(t)
	plugintest.TestStore(t, suiteOpener(func(c *Config) { c.Listen = false }))
}
