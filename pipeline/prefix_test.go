package pipeline

import (
	"bytes"
	"testing"
)

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{[]byte("ab"), []byte("ac")},
		{[]byte{'a', 0xFF, 0xFF}, []byte("b")},
		{[]byte{0xFF}, nil},
		{nil, nil},
	} {
		in := bytes.Clone(tc.in)
		if got := PrefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("PrefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !bytes.Equal(in, tc.in) {
			t.Errorf("PrefixEnd changed its argument to %q", tc.in)
		}
	}
}
