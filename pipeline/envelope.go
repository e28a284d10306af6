package pipeline

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Bounds of the protocol envelope: what a receiver accepts before it
// builds anything (a topic, a message id, an ack, a log line) from a
// payload. Every payload is untrusted, also from a logged-in device.
const (
	// MaxIDLen bounds batch and request ids (senders use 26-character
	// ULIDs).
	MaxIDLen = 64
	// MaxSiteLen bounds site ids and version origins.
	MaxSiteLen = 128
	// MaxModelLen bounds model names.
	MaxModelLen = 128
	// MaxPKLen and MaxSKLen bound key parts: DynamoDB's partition and
	// sort key limits.
	MaxPKLen = 2048
	MaxSKLen = 1024
	// MaxJSONDepth bounds the nesting of a payload: an item may nest 32
	// levels (DynamoDB's limit) inside the batch envelope.
	MaxJSONDepth = 40
	// MaxReasonLen bounds a rejection reason, so an ack stays small
	// whatever the input was.
	MaxReasonLen = 256
	// quoteLen is how much of an offending input an error repeats.
	quoteLen = 32
)

// ValidID reports whether s can serve as a batch or request id: 1 to
// MaxIDLen characters of [A-Za-z0-9._:-]. Ids travel in acks, message ids
// and MQTT properties, so nothing else is accepted.
func ValidID(s string) error {
	return checkToken(s, MaxIDLen, false)
}

// ValidSite reports whether s can be a site id or a version origin: it
// must start with a letter or digit and hold 1 to MaxSiteLen characters of
// [A-Za-z0-9._-] (the form config and the broker accept).
func ValidSite(s string) error {
	return checkToken(s, MaxSiteLen, true)
}

func checkToken(s string, limit int, site bool) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > limit:
		return fmt.Errorf("%s is %d bytes, over %d", Quote(s), len(s), limit)
	case site && !isAlnum(s[0]):
		return fmt.Errorf("%s must start with a letter or digit", Quote(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || c == '.' || c == '_' || c == '-' || (!site && c == ':') {
			continue
		}
		allowed := "letters, digits, '.', '_', '-'"
		if !site {
			allowed += ", ':'"
		}
		return fmt.Errorf("%s holds %s at byte %d (allowed: %s)", Quote(s), Quote(string(c)), i, allowed)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// ValidText reports whether s is valid UTF-8 without NUL or other control
// characters and at most limit bytes: the form of model names and key
// parts.
func ValidText(s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%s is %d bytes, over %d", Quote(s), len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", Quote(s))
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s holds control character %U at byte %d", Quote(s), r, i)
		}
	}
	return nil
}

// Quote renders untrusted input for an error message: Go-quoted (so
// invalid UTF-8 and control characters are escaped) and cut after a short
// prefix, so no message repeats more than a few bytes of what it refuses.
func Quote(s string) string {
	if len(s) <= quoteLen {
		return fmt.Sprintf("%q", s)
	}
	cut := quoteLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}

// Reason renders err as a rejection reason of at most MaxReasonLen bytes
// of valid UTF-8.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	return Truncate(err.Error(), MaxReasonLen)
}

// Truncate cuts s to at most n bytes on a rune boundary, replacing invalid
// UTF-8, and marks a cut with "…".
func Truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// CheckJSONDepth refuses JSON nested deeper than max, by a scan of the
// raw bytes that allocates nothing; it runs before a decoder sees them.
func CheckJSONDepth(b []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return fmt.Errorf("%w: JSON nested deeper than %d levels", ErrInvalid, max)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}
