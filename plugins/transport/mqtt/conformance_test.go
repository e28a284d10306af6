package mqtt

import (
	"testing"

	"github.com/iotod/iotod/pipeline/plugintest"
)

// TestConformanceMochi runs the transport suite over the embedded broker,
// redelivery after restart included: a message delivered and not acked
// comes again to a transport reopened with the same client id.
func TestConformanceMochi(t *testing.T) {
	b := startMochi(t, "", nil)
	plugintest.TestTransport(t, plugintest.TransportFeatures{Persistent: true}, newOpener(t, b.url, suiteMetadata).suite)
}

// TestConformanceMosquitto runs the suite over a mosquitto process.
func TestConformanceMosquitto(t *testing.T) {
	url := mosquittoURL(t)
	plugintest.TestTransport(t, plugintest.TransportFeatures{Persistent: true}, newOpener(t, url, suiteMetadata).suite)
}

// suiteMetadata makes the transports keep the metadata the suite stamps
// on its messages: received messages keep only metadata_keys.
func suiteMetadata(c *Config) {
	c.MetadataKeys = []string{"plugintest_run", "plugintest_n", "plugintest_pub", "extra"}
}
