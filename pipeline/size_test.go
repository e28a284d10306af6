package pipeline

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParseByteSize(t *testing.T) {
	good := []struct {
		in   string
		want ByteSize
	}{
		{"0", 0},
		{"512", 512},
		{"512b", 512},
		{"128k", 128 * 1024},
		{"10KB", 10 * 1024},
		{"10kb", 10 * 1024},
		{"10KiB", 10 * 1024},
		{"1MB", 1 << 20},
		{"1mib", 1 << 20},
		{"16M", 16 << 20},
		{"2GB", 2 << 30},
	}
	for _, tc := range good {
		got, err := ParseByteSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	bad := []string{"", "10 KB", " 10KB", "10KB ", "KB", "-1", "+5", "1.5KB", "10XB", "10T", "0x10",
		"9223372036854775808", "9000000000G"}
	for _, in := range bad {
		_, err := ParseByteSize(in)
		if err == nil {
			t.Errorf("ParseByteSize(%q): no error", in)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "is not a size") {
			t.Errorf("ParseByteSize(%q) = %v; want ErrInvalid naming it not a size", in, err)
		}
	}
	_, err := ParseByteSize("10 KB")
	if want := `"10 KB" is not a size (want e.g. 512, 10KB, 1MB)`; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error %q does not end in %q", err, want)
	}
}

func TestByteSizeString(t *testing.T) {
	for _, tc := range []struct {
		in   ByteSize
		want string
	}{
		{0, "0"}, {1000, "1000"}, {1024, "1KB"}, {10 * 1024, "10KB"}, {1536, "1536"},
		{1 << 20, "1MB"}, {3 << 30, "3GB"}, {1<<30 + 1024, "1048577KB"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("ByteSize(%d).String() = %q; want %q", int64(tc.in), got, tc.want)
		}
		back, err := ParseByteSize(tc.want)
		if err != nil || back != tc.in {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d back", tc.want, back, err, int64(tc.in))
		}
	}
	if _, err := ByteSize(-1).MarshalText(); err == nil {
		t.Error("MarshalText of a negative size: no error")
	}
}

func TestByteSizeYAML(t *testing.T) {
	var c struct {
		Limit ByteSize `yaml:"limit"`
	}
	for in, want := range map[string]ByteSize{"limit: 10KB": 10240, "limit: 512": 512, `limit: "1MB"`: 1 << 20} {
		c.Limit = 0
		if err := yaml.Unmarshal([]byte(in), &c); err != nil || c.Limit != want {
			t.Errorf("yaml %q: got %d, %v; want %d", in, c.Limit, err, want)
		}
	}
	err := yaml.Unmarshal([]byte(`limit: 10 KB`), &c)
	if err == nil || !strings.Contains(err.Error(), `"10 KB" is not a size`) {
		t.Errorf("yaml limit: 10 KB: got %v", err)
	}
	out, err := yaml.Marshal(struct {
		Limit ByteSize `yaml:"limit"`
	}{64 * Kilobyte})
	if err != nil || string(out) != "limit: 64KB\n" {
		t.Errorf("yaml.Marshal = %q, %v; want limit: 64KB", out, err)
	}
}
