package mqtt

import (
	"testing"

	"github.com/iotod/iotod/pipeline"
)

func TestTopicScheme(t *testing.T) {
	tests := []struct {
		template, topic string
		ch              pipeline.Channel
		site            string
		ok              bool
	}{
		{"iotod/{site}/{channel}", "iotod/pump-7/up", pipeline.ChanUp, "pump-7", true},
		{"iotod/{site}/{channel}", "iotod/all/down", pipeline.ChanDown, pipeline.Broadcast, true},
		{"iotod/{site}/{channel}", "iotod/pump-7/down-ack", pipeline.ChanDownAck, "pump-7", true},
		{"dt/iotod/{site}/{channel}", "dt/iotod/pump-7/sync", pipeline.ChanSync, "pump-7", true},
		{"{channel}/{site}", "up-ack/pump-7", pipeline.ChanUpAck, "pump-7", true},
		{"iotod/{site}/{channel}", "iotod/pump-7/bogus", "", "", false},    // unknown channel
		{"iotod/{site}/{channel}", "other/pump-7/up", "", "", false},       // literal level differs
		{"iotod/{site}/{channel}", "iotod/pump-7/up/extra", "", "", false}, // too many levels
		{"iotod/{site}/{channel}", "iotod//up", "", "", false},             // empty site
	}
	for _, tc := range tests {
		ts, err := parseTemplate(tc.template)
		if err != nil {
			t.Fatalf("template %q: %v", tc.template, err)
		}
		ch, site, ok := ts.parse(tc.topic)
		if ok != tc.ok || ch != tc.ch || site != tc.site {
			t.Errorf("%q parse %q = (%q, %q, %v), want (%q, %q, %v)", tc.template, tc.topic, ch, site, ok, tc.ch, tc.site, tc.ok)
		}
		if tc.ok {
			if got := ts.topic(tc.ch, tc.site); got != tc.topic {
				t.Errorf("%q topic(%s, %s) = %q, want %q", tc.template, tc.ch, tc.site, got, tc.topic)
			}
		}
	}
}

// TestFilters: a site's subscription stands on its topic (and the
// broadcast topic for down); every site's on a shared subscription.
func TestFilters(t *testing.T) {
	tr := &Transport{cfg: NewDefaultConfig()}
	tr.topics, _ = parseTemplate(DefaultTopic)
	tests := []struct {
		ch   pipeline.Channel
		site string
		want []string
	}{
		{pipeline.ChanDown, "pump-7", []string{"iotod/pump-7/down", "iotod/all/down"}},
		{pipeline.ChanUpAck, "pump-7", []string{"iotod/pump-7/up-ack"}},
		{pipeline.ChanDown, pipeline.Broadcast, []string{"iotod/all/down"}},
		{pipeline.ChanUp, "", []string{"$share/iotod/iotod/+/up"}},
	}
	for _, tc := range tests {
		got := tr.filtersFor(tc.ch, tc.site)
		if len(got) != len(tc.want) {
			t.Errorf("filters(%s, %q) = %q, want %q", tc.ch, tc.site, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("filters(%s, %q) = %q, want %q", tc.ch, tc.site, got, tc.want)
			}
		}
	}
	tr.cfg.ShareGroup = ""
	if got := tr.filtersFor(pipeline.ChanSync, ""); len(got) != 1 || got[0] != "iotod/+/sync" {
		t.Errorf("without a share group: %q, want [iotod/+/sync]", got)
	}
}
