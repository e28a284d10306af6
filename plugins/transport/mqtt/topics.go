package mqtt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/iotod/iotod/pipeline"
)

// Placeholders of the topic template.
const (
	siteHole    = "{site}"
	channelHole = "{channel}"
)

// channels lists the protocol's channels: the only values {channel}
// takes.
var channels = []pipeline.Channel{pipeline.ChanUp, pipeline.ChanDown, pipeline.ChanUpAck, pipeline.ChanDownAck, pipeline.ChanSync}

// topicScheme maps (channel, site) to topics and back, after a template
// such as "iotod/{site}/{channel}".
type topicScheme struct {
	levels  []string // the template split at '/'
	siteAt  int      // index of the {site} level
	chanAt  int      // index of the {channel} level
	literal []bool   // levels that are neither placeholder
}

// parseTemplate checks a topic template: {site} and {channel} each once
// as a whole level, no wildcards, no leading '$'.
func parseTemplate(s string) (topicScheme, error) {
	ts := topicScheme{levels: strings.Split(s, "/"), siteAt: -1, chanAt: -1}
	switch {
	case s == "":
		return ts, errors.New("must not be empty")
	case strings.HasPrefix(s, "$"):
		return ts, fmt.Errorf("%q: must not start with '$' (topics the broker reserves)", s)
	case strings.ContainsAny(s, "+#"):
		return ts, fmt.Errorf("%q: must not hold '+' or '#'", s)
	}
	if err := checkString(s, MaxTopicTemplateLen); err != nil {
		return ts, fmt.Errorf("%s: %v", quoted(s), err)
	}
	ts.literal = make([]bool, len(ts.levels))
	for i, l := range ts.levels {
		switch l {
		case siteHole:
			if ts.siteAt >= 0 {
				return ts, fmt.Errorf("%q: %s more than once", s, siteHole)
			}
			ts.siteAt = i
		case channelHole:
			if ts.chanAt >= 0 {
				return ts, fmt.Errorf("%q: %s more than once", s, channelHole)
			}
			ts.chanAt = i
		default:
			if strings.ContainsAny(l, "{}") {
				return ts, fmt.Errorf("%q: level %q: placeholders %s and %s must be whole levels, and no others exist", s, l, siteHole, channelHole)
			}
			ts.literal[i] = true
		}
	}
	if ts.siteAt < 0 || ts.chanAt < 0 {
		return ts, fmt.Errorf("%q: needs both %s and %s", s, siteHole, channelHole)
	}
	return ts, nil
}

// topic is the topic of ch for site; site "+" makes the filter of every
// site.
func (ts topicScheme) topic(ch pipeline.Channel, site string) string {
	out := make([]string, len(ts.levels))
	copy(out, ts.levels)
	out[ts.siteAt] = site
	out[ts.chanAt] = string(ch)
	return strings.Join(out, "/")
}

// parse reads the channel and site of a topic; ok is false for a topic
// the template does not make.
func (ts topicScheme) parse(topic string) (ch pipeline.Channel, site string, ok bool) {
	levels := strings.Split(topic, "/")
	if len(levels) != len(ts.levels) {
		return "", "", false
	}
	for i, l := range levels {
		if ts.literal[i] && l != ts.levels[i] {
			return "", "", false
		}
	}
	site, ch = levels[ts.siteAt], pipeline.Channel(levels[ts.chanAt])
	if validLevel(site) != nil || !knownChannel(ch) {
		return "", "", false
	}
	return ch, site, true
}

func knownChannel(ch pipeline.Channel) bool {
	for _, c := range channels {
		if c == ch {
			return true
		}
	}
	return false
}

// validLevel checks that s can stand as one topic level: not empty, at
// most MaxSiteLen bytes, a string every broker takes (checkString), no
// '/', '+' or '#'.
func validLevel(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if err := checkString(s, MaxSiteLen); err != nil {
		return fmt.Errorf("%s: %v", quoted(s), err)
	}
	if strings.ContainsAny(s, "/+#") {
		return fmt.Errorf("%s holds '/', '+' or '#'", quoted(s))
	}
	return nil
}
