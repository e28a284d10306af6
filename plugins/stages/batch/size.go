package batch

import (
	"unicode/utf8"

	"github.com/iotod/iotod/pipeline"
)

// The JSON a change adds to a batch besides its strings and item:
// {"seq":N,"model":"","op":"","key":{"pk":"","sk":""},"item":,
// "version":{"wall":N,"counter":N,"origin":""},"origin":"","time":N},
// with the comma that follows it (123 bytes, rounded up to 128) and every
// number at its widest (20 characters, 10 for the counter).
const changeOverhead = 128 + 20 + 20 + 10 + 20

// envelopeSize is the JSON of an empty batch sent from site:
// {"v":1,"id":"<26-char ULID>","site":"","changes":null} (66 bytes,
// rounded up to 72).
func envelopeSize(site string) int {
	return 72 + stringSize(site)
}

// changeSize is an upper bound of c's JSON in a batch, as encoding/json
// writes it (which escapes <, > and & in strings and items as \u00XX).
func changeSize(c *pipeline.Change) int {
	return changeOverhead + itemSize(c.Item) + stringSize(c.Model) + stringSize(string(c.Op)) +
		stringSize(c.Key.PK) + stringSize(c.Key.SK) + stringSize(c.Version.Origin) + stringSize(c.Origin)
}

// itemSize is the length of raw JSON once HTML-escaped; whitespace that
// compacting would drop is counted.
func itemSize(raw []byte) int {
	n := len(raw)
	for _, b := range raw {
		if b == '<' || b == '>' || b == '&' {
			n += 5
		}
	}
	return n
}

// stringSize is the length of s as a JSON string body, escapes included.
func stringSize(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
			n += 2
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
			n += 6
		case r == utf8.RuneError:
			n += 6 // invalid UTF-8 is written as \ufffd
		default:
			n += utf8.RuneLen(r)
		}
	}
	return n
}
