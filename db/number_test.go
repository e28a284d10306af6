package db

import "testing"

func TestCheckNumber(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0", true}, {"-0.000", true}, {"12", true}, {"-12.5", true}, {"1e125", true}, {"9.9999e125", true},
		{"1e-130", true}, {"0.001e-127", true}, {"12345678901234567890123456789012345678", true},
		{"1.2345678901234567890123456789012345678e10", true}, {"100000000000000000000000000000000000000000", true},
		{"1e126", false}, {"10e125", false}, {"1e-131", false}, {"0.01e-129", false}, {"1e400", false}, {"1e-400", false},
		{"123456789012345678901234567890123456789", false}, {"1e99999999999999999999", false},
	} {
		if err := checkNumber(tc.in); (err == nil) != tc.ok {
			t.Errorf("checkNumber(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
