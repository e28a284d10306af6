package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes as configs write it: a whole number with an
// optional unit and no space, "512", "128k", "10KB", "10KiB", "1MB", "2GB".
// Units are case-insensitive and binary: K, KB and KiB are all 1024 bytes,
// M, MB and MiB 1024², G, GB and GiB 1024³, as most IoT tooling counts
// buffer and payload limits. B is bytes.
type ByteSize int64

// Size units.
const (
	Byte     ByteSize = 1
	Kilobyte          = 1024 * Byte
	Megabyte          = 1024 * Kilobyte
	Gigabyte          = 1024 * Megabyte
)

// sizeUnits maps each accepted unit, lower case, to its multiplier.
var sizeUnits = map[string]ByteSize{
	"": Byte, "b": Byte,
	"k": Kilobyte, "kb": Kilobyte, "kib": Kilobyte,
	"m": Megabyte, "mb": Megabyte, "mib": Megabyte,
	"g": Gigabyte, "gb": Gigabyte, "gib": Gigabyte,
}

// ParseByteSize reads a size such as "10KB". The error wraps ErrInvalid and
// reads `"10 KB" is not a size (want e.g. 512, 10KB, 1MB)`.
func ParseByteSize(s string) (ByteSize, error) {
	digits := 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		digits++
	}
	unit, ok := sizeUnits[strings.ToLower(s[digits:])]
	if digits == 0 || !ok {
		return 0, notASize(s, "")
	}
	n, err := strconv.ParseInt(s[:digits], 10, 64)
	if err != nil || n > math.MaxInt64/int64(unit) {
		return 0, notASize(s, ": too large")
	}
	return ByteSize(n) * unit, nil
}

func notASize(s, why string) error {
	return fmt.Errorf("%w: %q is not a size%s (want e.g. 512, 10KB, 1MB)", ErrInvalid, s, why)
}

// UnmarshalText implements encoding.TextUnmarshaler (YAML and JSON
// decoders use it, for quoted and bare numbers alike).
func (b *ByteSize) UnmarshalText(text []byte) error {
	n, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = n
	return nil
}

// MarshalText implements encoding.TextMarshaler; see String.
func (b ByteSize) MarshalText() ([]byte, error) {
	if b < 0 {
		return nil, fmt.Errorf("%w: size %d is negative", ErrInvalid, int64(b))
	}
	return []byte(b.String()), nil
}

// String writes b in the largest unit that divides it exactly: "10KB",
// "1MB", "1000". ParseByteSize reads it back to the same value.
func (b ByteSize) String() string {
	switch {
	case b != 0 && b%Gigabyte == 0:
		return strconv.FormatInt(int64(b/Gigabyte), 10) + "GB"
	case b != 0 && b%Megabyte == 0:
		return strconv.FormatInt(int64(b/Megabyte), 10) + "MB"
	case b != 0 && b%Kilobyte == 0:
		return strconv.FormatInt(int64(b/Kilobyte), 10) + "KB"
	}
	return strconv.FormatInt(int64(b), 10)
}
