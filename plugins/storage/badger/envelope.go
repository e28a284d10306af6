package badger

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// Envelope format versions, the first byte of every stored value.
const (
	recordFormat byte = 1
	changeFormat byte = 1
)

var errBadEnvelope = errors.New("malformed envelope")

// encodeRecord renders everything of rec except its key (which is in the
// badger key) as a compact binary envelope.
func encodeRecord(rec *pipeline.Record) []byte {
	n := 1 + len(rec.Model) + len(rec.Item) + len(rec.Version.Origin) + 40
	for _, e := range rec.Indexes {
		n += len(e.Index) + len(e.Hash) + len(e.Sort) + 15
	}
	b := make([]byte, 0, n)
	b = append(b, recordFormat)
	b = appendBytes(b, []byte(rec.Model))
	b = appendBytes(b, rec.Item)
	b = binary.AppendUvarint(b, uint64(len(rec.Indexes)))
	for _, e := range rec.Indexes {
		b = appendBytes(b, []byte(e.Index))
		b = appendBytes(b, []byte(e.Hash))
		b = appendBytes(b, []byte(e.Sort))
	}
	b = appendVersion(b, rec.Version)
	return binary.AppendVarint(b, rec.Expires)
}

// decodeRecord reads an envelope written by encodeRecord. The record keeps
// references into b.
func decodeRecord(key pipeline.Key, b []byte) (*pipeline.Record, error) {
	r := reader{b: b}
	if r.byte() != recordFormat {
		return nil, fmt.Errorf("record %s: %w: unknown format", key, errBadEnvelope)
	}
	rec := &pipeline.Record{Key: key}
	rec.Model = string(r.bytes())
	if item := r.bytes(); len(item) > 0 {
		rec.Item = item
	}
	if n := r.uvarint(); n > 0 && n <= uint64(len(b)) {
		rec.Indexes = make([]pipeline.IndexEntry, n)
		for i := range rec.Indexes {
			rec.Indexes[i] = pipeline.IndexEntry{Index: r.string(), Hash: r.string(), Sort: r.string()}
		}
	} else if n > 0 {
		r.fail()
	}
	rec.Version = r.version()
	rec.Expires = r.varint()
	if r.err != nil {
		return nil, fmt.Errorf("record %s: %w", key, r.err)
	}
	return rec, nil
}

// encodeChange renders ch (but its Seq, which is in the key) as a compact
// binary envelope. A nil Item is kept distinct from an empty one.
func encodeChange(ch *pipeline.Change) []byte {
	n := 1 + len(ch.Model) + len(ch.Op) + len(ch.Key.PK) + len(ch.Key.SK) + len(ch.Item) +
		len(ch.Version.Origin) + len(ch.Origin) + 60
	b := make([]byte, 0, n)
	b = append(b, changeFormat)
	b = appendBytes(b, []byte(ch.Model))
	b = appendBytes(b, []byte(ch.Op))
	b = appendBytes(b, []byte(ch.Key.PK))
	b = appendBytes(b, []byte(ch.Key.SK))
	if ch.Item == nil {
		b = binary.AppendUvarint(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(ch.Item))+1)
		b = append(b, ch.Item...)
	}
	b = appendVersion(b, ch.Version)
	b = appendBytes(b, []byte(ch.Origin))
	return binary.AppendVarint(b, ch.Time)
}

// decodeChange reads an envelope written by encodeChange. The change keeps
// references into b.
func decodeChange(seq uint64, b []byte) (pipeline.Change, error) {
	r := reader{b: b}
	if r.byte() != changeFormat {
		return pipeline.Change{}, fmt.Errorf("outbox change %d: %w: unknown format", seq, errBadEnvelope)
	}
	ch := pipeline.Change{Seq: seq}
	ch.Model = r.string()
	ch.Op = pipeline.Op(r.string())
	ch.Key.PK = r.string()
	ch.Key.SK = r.string()
	if n := r.uvarint(); n > 0 {
		ch.Item = r.take(n - 1)
		if ch.Item == nil {
			ch.Item = []byte{}
		}
	}
	ch.Version = r.version()
	ch.Origin = r.string()
	ch.Time = r.varint()
	if r.err != nil {
		return pipeline.Change{}, fmt.Errorf("outbox change %d: %w", seq, r.err)
	}
	return ch, nil
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

func appendVersion(b []byte, v pipeline.Version) []byte {
	b = binary.AppendVarint(b, v.Wall)
	b = binary.AppendUvarint(b, uint64(v.Counter))
	return appendBytes(b, []byte(v.Origin))
}

// reader decodes envelope fields; the first fault sticks in err and turns
// every later read into a zero value.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errBadEnvelope
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) take(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte  { return r.take(r.uvarint()) }
func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) version() pipeline.Version {
	v := pipeline.Version{Wall: r.varint()}
	c := r.uvarint()
	if c > 1<<32-1 {
		r.fail()
	}
	v.Counter = uint32(c)
	v.Origin = r.string()
	return v
}
