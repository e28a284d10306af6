package pipeline

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestVersionOrderMatchesStringOrder(t *testing.T) {
	vs := []Version{
		{Wall: 1, Counter: 0, Origin: "b"},
		{Wall: 1, Counter: 0, Origin: "a"},
		{Wall: 1, Counter: 2, Origin: "a"},
		{Wall: 1732541234567, Counter: 0, Origin: "dev"},
		{Wall: 2, Counter: 0, Origin: "a"},
		{Wall: 1, Counter: 10, Origin: "a"},
	}
	byCompare := append([]Version(nil), vs...)
	sort.Slice(byCompare, func(i, j int) bool { return byCompare[i].Compare(byCompare[j]) < 0 })
	byString := append([]Version(nil), vs...)
	sort.Slice(byString, func(i, j int) bool { return byString[i].String() < byString[j].String() })
	require.Equal(t, byCompare, byString)
	require.Equal(t, Version{Wall: 1, Origin: "a"}, byCompare[0])
	for _, v := range vs {
		back, err := ParseVersion(v.String())
		require.NoError(t, err)
		require.Equal(t, v, back)
		require.Zero(t, v.Compare(back))
	}
}

func TestParseVersionRejectsGarbage(t *testing.T) {
	for _, s := range []string{"", "1.2", "x.1.a", "1.y.a", "-5.1.a", "1.99999999999.a"} {
		_, err := ParseVersion(s)
		require.Error(t, err, s)
	}
}

func TestClockIsMonotonicUnderASkewedWallClock(t *testing.T) {
	wall := time.UnixMilli(1000)
	c := &Clock{Origin: "d", Now: func() time.Time { return wall }}
	a := c.Next()
	b := c.Next()
	require.Equal(t, -1, a.Compare(b), "same millisecond: counter orders")
	wall = time.UnixMilli(500) // the clock jumps back
	d := c.Next()
	require.Equal(t, -1, b.Compare(d))
	c.Observe(Version{Wall: 5000, Counter: 7, Origin: "cloud"})
	e := c.Next()
	require.Equal(t, -1, Version{Wall: 5000, Counter: 7, Origin: "cloud"}.Compare(e), "observed remote versions order before the next local one")
	require.Equal(t, "d", e.Origin)
}

func TestPermanentErrors(t *testing.T) {
	base := errors.New("boom")
	require.False(t, IsPermanent(base))
	require.True(t, IsPermanent(Permanent(base)))
	require.True(t, IsPermanent(fmt.Errorf("wrapped: %w", Permanent(base))))
	require.ErrorIs(t, Permanent(base), base)
	require.True(t, IsPermanent(fmt.Errorf("x: %w", ErrInvalid)))
	require.Nil(t, Permanent(nil))
}
