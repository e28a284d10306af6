package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/iotod/iotod/pipeline"
)

// The placeholders of a topic template; each is a whole level.
const (
	siteLevel    = "{site}"
	channelLevel = "{channel}"
)

// channels are the protocol's channels, the values of {channel}.
var channels = []pipeline.Channel{pipeline.ChanUp, pipeline.ChanDown, pipeline.ChanUpAck, pipeline.ChanDownAck, pipeline.ChanSync}

// What a device may do on its own site's topics; it may also read the
// broadcast site's down channel.
var (
	deviceWrites = []pipeline.Channel{pipeline.ChanUp, pipeline.ChanDownAck, pipeline.ChanSync}
	deviceReads  = []pipeline.Channel{pipeline.ChanDown, pipeline.ChanUpAck}
)

// Template is a parsed topic template such as iotod/{site}/{channel}.
type Template struct {
	text    string
	levels  []string
	site    int // index of the {site} level
	channel int // index of the {channel} level
}

// ParseTemplate reads a topic template: levels separated by '/', none
// empty, with {site} and {channel} each exactly once as a whole level and
// no wildcards. It may not start with $share or $SYS.
func ParseTemplate(s string) (Template, error) {
	t := Template{text: s, levels: strings.Split(s, "/"), site: -1, channel: -1}
	if s == "" {
		return Template{}, errors.New("is empty")
	}
	if strings.ContainsAny(s, "+#") {
		return Template{}, fmt.Errorf("%q has a wildcard (+ or #)", s)
	}
	if first := t.levels[0]; strings.EqualFold(first, "$share") || strings.EqualFold(first, "$SYS") {
		return Template{}, fmt.Errorf("%q may not start with %s", s, first)
	}
	for i, l := range t.levels {
		switch {
		case l == "":
			return Template{}, fmt.Errorf("%q has an empty level", s)
		case l == siteLevel && t.site < 0:
			t.site = i
		case l == channelLevel && t.channel < 0:
			t.channel = i
		case l == siteLevel || l == channelLevel:
			return Template{}, fmt.Errorf("%q has %s twice", s, l)
		case strings.ContainsAny(l, "{}"):
			return Template{}, fmt.Errorf("%q: level %q: only {site} and {channel} may be used, each as a whole level", s, l)
		}
	}
	if t.site < 0 || t.channel < 0 {
		return Template{}, fmt.Errorf("%q must have the levels {site} and {channel}", s)
	}
	return t, nil
}

func (t Template) String() string { return t.text }

// Topic is the topic of site's channel ch.
func (t Template) Topic(site string, ch pipeline.Channel) string {
	levels := slices.Clone(t.levels)
	levels[t.site], levels[t.channel] = site, string(ch)
	return strings.Join(levels, "/")
}

// Match reads the site and channel of topic; ok is false when topic is
// not one of the template's (a literal level differs, the site is not a
// site id, or the channel is unknown). Wildcards never match.
func (t Template) Match(topic string) (site string, ch pipeline.Channel, ok bool) {
	levels := strings.Split(topic, "/")
	if len(levels) != len(t.levels) {
		return "", "", false
	}
	for i, l := range levels {
		switch i {
		case t.site:
			site = l
		case t.channel:
			ch = pipeline.Channel(l)
		default:
			if l != t.levels[i] {
				return "", "", false
			}
		}
	}
	if !siteID.MatchString(site) || !slices.Contains(channels, ch) {
		return "", "", false
	}
	return site, ch, true
}

// Covers reports whether every topic filter matches is one of the
// template's. A shared subscription ($share/group/filter) is read as its
// filter.
func (t Template) Covers(filter string) bool {
	levels := strings.Split(unshare(filter), "/")
	for i, l := range levels {
		if l == "#" {
			// Only placeholders may follow: # then matches no topic
			// outside the template but longer ones, which nobody can
			// publish.
			return i == len(levels)-1 && !slices.ContainsFunc(t.levels[min(i, len(t.levels)):], isLiteral)
		}
		if i >= len(t.levels) {
			return false
		}
		switch {
		case l == "+" && i != t.site && i != t.channel:
			return false
		case l == "+":
		case i == t.site && !siteID.MatchString(l):
			return false
		case i == t.channel && !slices.Contains(channels, pipeline.Channel(l)):
			return false
		case i != t.site && i != t.channel && l != t.levels[i]:
			return false
		}
	}
	return len(levels) == len(t.levels)
}

func isLiteral(level string) bool { return level != siteLevel && level != channelLevel }

// unshare returns the filter of a shared subscription $share/group/filter,
// or filter itself.
func unshare(filter string) string {
	prefix, rest, ok := strings.Cut(filter, "/")
	if !ok || !strings.EqualFold(prefix, "$share") {
		return filter
	}
	_, f, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return f
}

// identity is who a client acts as: a cloud worker, or one device site.
type identity struct {
	cloud bool
	site  string
}

// allows reports whether id may publish to topic (write) or subscribe to
// filter / receive on topic (read). A device's filters must be exact
// topics: its site's down and up-ack, and the broadcast down.
func (t Template) allows(id identity, topic string, write bool) bool {
	if id.cloud {
		if write {
			_, _, ok := t.Match(topic)
			return ok
		}
		return t.Covers(topic)
	}
	site, ch, ok := t.Match(topic)
	switch {
	case !ok:
		return false
	case write:
		return site == id.site && slices.Contains(deviceWrites, ch)
	case site == pipeline.Broadcast:
		return ch == pipeline.ChanDown
	default:
		return site == id.site && slices.Contains(deviceReads, ch)
	}
}
