package broker

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

func TestTemplate(t *testing.T) {
	tm, err := ParseTemplate("$aws/rules/iotod/{site}/x/{channel}")
	require.NoError(t, err)
	assert.Equal(t, "$aws/rules/iotod/pump-7/x/up-ack", tm.Topic("pump-7", pipeline.ChanUpAck))
	site, ch, ok := tm.Match("$aws/rules/iotod/pump-7/x/down")
	assert.True(t, ok)
	assert.Equal(t, "pump-7", site)
	assert.Equal(t, pipeline.ChanDown, ch)
	for _, bad := range []string{"$aws/rules/iotod/pump-7/down", "$aws/rules/iotod/pump-7/x/nope",
		"$aws/rules/iotod/+/x/down", "$aws/rules/other/pump-7/x/down", "$aws/rules/iotod/pump-7/x/down/more"} {
		_, _, ok := tm.Match(bad)
		assert.False(t, ok, bad)
	}
	rev, err := ParseTemplate("{channel}/{site}")
	require.NoError(t, err)
	assert.Equal(t, "sync/d1", rev.Topic("d1", pipeline.ChanSync))
}

// TestACL is the rule table: who may publish (write) or subscribe and
// receive (read) what, under the default template.
func TestACL(t *testing.T) {
	tm, err := ParseTemplate(DefaultTopic)
	require.NoError(t, err)
	d1, cloud := identity{site: "d1"}, identity{cloud: true}
	tests := []struct {
		id    identity
		topic string
		write bool
		want  bool
	}{
		// A device writes its own up, down-ack and sync...
		{d1, "iotod/d1/up", true, true},
		{d1, "iotod/d1/down-ack", true, true},
		{d1, "iotod/d1/sync", true, true},
		// ...never its down or up-ack, another site's, or the broadcast.
		{d1, "iotod/d1/down", true, false},
		{d1, "iotod/d1/up-ack", true, false},
		{d1, "iotod/d2/up", true, false},
		{d1, "iotod/all/down", true, false},
		{d1, "iotod/all/up", true, false},
		{d1, "other/topic", true, false},
		{d1, "iotod/d1/up/x", true, false},
		// A device reads its own down and up-ack and the broadcast down.
		{d1, "iotod/d1/down", false, true},
		{d1, "iotod/d1/up-ack", false, true},
		{d1, "iotod/all/down", false, true},
		{d1, "iotod/d1/up", false, false},
		{d1, "iotod/d1/sync", false, false},
		{d1, "iotod/d2/down", false, false},
		{d1, "iotod/all/up-ack", false, false},
		{d1, "iotod/+/down", false, false},
		{d1, "iotod/d1/+", false, false},
		{d1, "iotod/#", false, false},
		{d1, "#", false, false},
		{d1, "$share/g/iotod/d1/down", false, false},
		{d1, "$SYS/broker/clients", false, false},
		// The cloud writes and reads every site's topics under the
		// template, shared subscriptions included.
		{cloud, "iotod/d1/down", true, true},
		{cloud, "iotod/all/down", true, true},
		{cloud, "iotod/d2/up-ack", true, true},
		{cloud, "iotod/d2/bogus", true, false},
		{cloud, "other/topic", true, false},
		{cloud, "iotod/+/up", false, true},
		{cloud, "$share/iotod/iotod/+/up", false, true},
		{cloud, "$SHARE/w/iotod/+/+", false, true},
		{cloud, "iotod/d1/sync", false, true},
		{cloud, "iotod/+/#", false, true},
		{cloud, "iotod/#", false, true},
		{cloud, "#", false, false},
		{cloud, "+/d1/up", false, false},
		{cloud, "iotod/d1/bogus", false, false},
		{cloud, "iotod/d1/up/x", false, false},
		{cloud, "iotod/d1", false, false},
		{cloud, "$share/iotod", false, false},
		{cloud, "$SYS/#", false, false},
		{cloud, "other/#", false, false},
	}
	for _, tt := range tests {
		who := "cloud"
		if !tt.id.cloud {
			who = tt.id.site
		}
		assert.Equal(t, tt.want, tm.allows(tt.id, tt.topic, tt.write), "%s write=%v %s", who, tt.write, tt.topic)
	}
}
