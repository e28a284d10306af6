package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is a hybrid logical clock stamp: wall milliseconds, a counter that
// orders stamps within one millisecond, and the origin site that breaks ties.
// Versions give every site the same total order even when device clocks are
// skewed.
type Version struct {
	Wall    int64  `json:"wall"`
	Counter uint32 `json:"counter"`
	Origin  string `json:"origin"`
}

// DefaultMaxClockSkew is how far ahead of a receiver's clock a remote
// version may be before the receiver refuses it.
const DefaultMaxClockSkew = 5 * time.Minute

// Validate checks a version received from another site: a wall time after
// the epoch, and an origin that is a site id. A zero version is invalid.
func (v Version) Validate() error {
	if v.Wall <= 0 {
		return fmt.Errorf("%w: version wall time %d: must be after 1970", ErrInvalid, v.Wall)
	}
	if err := ValidSite(v.Origin); err != nil {
		return fmt.Errorf("%w: version origin: %v", ErrInvalid, err)
	}
	return nil
}

// CheckSkew refuses a version more than maxSkew ahead of now: observing
// it would drag this site's clock, and through it every site's, into the
// future, after which real writes lose to it.
func (v Version) CheckSkew(now time.Time, maxSkew time.Duration) error {
	if limit := now.Add(maxSkew).UnixMilli(); v.Wall > limit {
		ahead := "more than 100 years"
		if ms := v.Wall - now.UnixMilli(); ms < 100*365*24*3600*1000 {
			ahead = (time.Duration(ms) * time.Millisecond).String()
		}
		return fmt.Errorf("%w: version %s is %s ahead of this site's clock (at most %s is accepted)",
			ErrInvalid, Truncate(v.String(), 64), ahead, maxSkew)
	}
	return nil
}

// IsZero reports whether v was never set.
func (v Version) IsZero() bool { return v.Wall == 0 && v.Counter == 0 && v.Origin == "" }

// Compare orders versions by wall time, then counter, then origin. It returns
// -1, 0 or +1.
func (v Version) Compare(o Version) int {
	switch {
	case v.Wall != o.Wall:
		return cmpInt(v.Wall, o.Wall)
	case v.Counter != o.Counter:
		return cmpInt(int64(v.Counter), int64(o.Counter))
	default:
		return strings.Compare(v.Origin, o.Origin)
	}
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	return 1
}

// String renders the version in a fixed-width form whose byte order is the
// version order: "0001732541234567.00000003.origin".
func (v Version) String() string {
	b := make([]byte, 0, 26+len(v.Origin))
	b = appendPadded(b, uint64(v.Wall), 16)
	b = append(b, '.')
	b = appendPadded(b, uint64(v.Counter), 8)
	b = append(b, '.')
	return string(append(b, v.Origin...))
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(b []byte, n uint64, width int) []byte {
	var tmp [20]byte
	d := strconv.AppendUint(tmp[:0], n, 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

// ParseVersion reads the String form back.
func ParseVersion(s string) (Version, error) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("version %q: want WALL.COUNTER.ORIGIN", s)
	}
	wall, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || wall < 0 {
		return Version{}, fmt.Errorf("version %q: bad wall time", s)
	}
	ctr, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return Version{}, fmt.Errorf("version %q: bad counter", s)
	}
	return Version{Wall: wall, Counter: uint32(ctr), Origin: parts[2]}, nil
}

// Clock issues hybrid logical clock versions for one site. It is safe for
// concurrent use. Now is the wall clock; nil means time.Now.
type Clock struct {
	Origin string
	Now    func() time.Time

	mu   sync.Mutex
	last Version
}

// NewClock returns a clock for the site origin.
func NewClock(origin string) *Clock { return &Clock{Origin: origin} }

func (c *Clock) wall() int64 {
	if c.Now != nil {
		return c.Now().UnixMilli()
	}
	return time.Now().UnixMilli()
}

// Next returns a version greater than every version this clock issued or
// observed. The counter never wraps: when it is exhausted within one
// millisecond the wall part moves on by one.
func (c *Clock) Next() Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.wall()
	switch {
	case w > c.last.Wall:
		c.last = Version{Wall: w, Origin: c.Origin}
	case c.last.Counter == math.MaxUint32:
		c.last = Version{Wall: c.last.Wall + 1, Origin: c.Origin}
	default:
		c.last = Version{Wall: c.last.Wall, Counter: c.last.Counter + 1, Origin: c.Origin}
	}
	return c.last
}

// Observe moves the clock past a version seen from another site, so that
// the next local version orders after it. Callers check the version first
// (Validate, CheckSkew): Observe trusts it.
func (c *Clock) Observe(v Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.Wall > c.last.Wall || (v.Wall == c.last.Wall && v.Counter > c.last.Counter) {
		c.last = Version{Wall: v.Wall, Counter: v.Counter, Origin: c.Origin}
	}
}
