package httpbus

import (
	"testing"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

// TestHubConformance runs the transport suite against hubs used directly
// (the cloud process's view): each open starts a new hub.
func TestHubConformance(t *testing.T) {
	plugintest.TestTransport(t, plugintest.TransportFeatures{}, func(t *testing.T) pipeline.Transport {
		return startHub(t, DefaultMaxPayload)
	})
}

// TestClientConformance runs the suite against clients of one hub over
// HTTP, with a "*" token: each open is a new client of the same hub.
func TestClientConformance(t *testing.T) {
	h := startHub(t, DefaultMaxPayload)
	plugintest.TestTransport(t, plugintest.TransportFeatures{}, func(t *testing.T) pipeline.Transport {
		return newClient(t, h, workerToken)
	})
}
