package dynamodb

import (
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline/plugintest"
)

// features are how the DynamoDB store departs from the storage contract.
var features = plugintest.StoreFeatures{
	// The table's stream will be the change feed (a later step).
	NoOutbox: true,
	// TransactWriteItems takes at most 100 items.
	MaxWritesPerUpdate: MaxWritesPerUpdate,
	// DynamoDB refuses empty key attributes.
	NoEmptyKeys: true,
	// TTL attributes are epoch seconds.
	ExpiresPrecision: time.Second,
}

func TestStoreConformance(t *testing.T) {
	dynamoURL(t)
	plugintest.TestStoreFeatures(t, features, suiteOpener())
}
