package badger

import (
	"encoding/binary"
	"errors"

	"github.com/iotod/iotod/pipeline"
)

// Key prefixes of the key spaces; see the package documentation.
const (
	prefixRecord byte = 'r'
	prefixIndex  byte = 'i'
	prefixExpiry byte = 'x'
	prefixOutbox byte = 'o'
	prefixMeta   byte = 'm'
)

// maxKeySize is badger's limit on a key.
const maxKeySize = 65000

var (
	metaOutboxHWM = []byte{prefixMeta, 'o', 'u', 't', 'b', 'o', 'x', '-', 'h', 'w', 'm'}

	errBadKey = errors.New("malformed key")
)

// appendEscaped appends s with every 0x00 byte escaped as 0x00 0xFF.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b = append(b, s[i])
		if s[i] == 0 {
			b = append(b, 0xFF)
		}
	}
	return b
}

// appendString appends s escaped and terminated by 0x00 0x01.
func appendString(b []byte, s string) []byte {
	return append(appendEscaped(b, s), 0, 1)
}

// readString decodes one appendString value from the front of b.
func readString(b []byte) (string, []byte, error) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			out = append(out, b[i])
			continue
		}
		if i+1 >= len(b) {
			return "", nil, errBadKey
		}
		switch b[i+1] {
		case 0xFF:
			out = append(out, 0)
			i++
		case 0x01:
			return string(out), b[i+2:], nil
		default:
			return "", nil, errBadKey
		}
	}
	return "", nil, errBadKey
}

func recordKey(k pipeline.Key) []byte {
	b := make([]byte, 0, 1+len(k.PK)+len(k.SK)+4)
	b = append(b, prefixRecord)
	return appendString(appendString(b, k.PK), k.SK)
}

// indexSpace is the prefix of every entry of one secondary index.
func indexSpace(index string) []byte {
	return appendString([]byte{prefixIndex}, index)
}

func indexKey(e pipeline.IndexEntry, k pipeline.Key) []byte {
	b := make([]byte, 0, 1+len(e.Index)+len(e.Hash)+len(e.Sort)+len(k.PK)+len(k.SK)+10)
	b = append(b, prefixIndex)
	b = appendString(appendString(appendString(b, e.Index), e.Hash), e.Sort)
	return appendString(appendString(b, k.PK), k.SK)
}

func expiryKey(expires int64, k pipeline.Key) []byte {
	b := make([]byte, 9, 9+len(k.PK)+len(k.SK)+4)
	b[0] = prefixExpiry
	binary.BigEndian.PutUint64(b[1:], uint64(expires))
	return appendString(appendString(b, k.PK), k.SK)
}

func outboxKey(seq uint64) []byte {
	b := make([]byte, 9)
	b[0] = prefixOutbox
	binary.BigEndian.PutUint64(b[1:], seq)
	return b
}

func outboxSeq(key []byte) (uint64, error) {
	if len(key) != 9 || key[0] != prefixOutbox {
		return 0, errBadKey
	}
	return binary.BigEndian.Uint64(key[1:]), nil
}

// readKey decodes a primary key (two strings) from the front of b.
func readKey(b []byte) (pipeline.Key, []byte, error) {
	pk, rest, err := readString(b)
	if err != nil {
		return pipeline.Key{}, nil, err
	}
	sk, rest, err := readString(rest)
	if err != nil {
		return pipeline.Key{}, nil, err
	}
	return pipeline.Key{PK: pk, SK: sk}, rest, nil
}
