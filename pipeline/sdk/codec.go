package sdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	gojson "github.com/goccy/go-json"

	"github.com/iotod/iotod/pipeline"
)

// codec is the gRPC codec of the plugin service. A message is JSON,
// except that the changes it carries (a batch for a stage, its reply,
// the changes for a trigger) follow the JSON in a binary form, items as
// raw bytes: changes are the bulk of a batch, and as JSON every item
// would be escaped, validated and compacted on each side of each call.
// The first byte says which:
//
//	'J' JSON
//	'B' uint32 big-endian n, n bytes of JSON with the changes left out,
//	    uvarint count, then each change (writeChange)
type codec struct{}

func (codec) Name() string { return Codec }

// changesOf returns the changes v carries, for the messages that carry
// changes; nil for the rest.
func changesOf(v any) *[]pipeline.Change {
	switch m := v.(type) {
	case *ProcessRequest:
		return &m.Batch.Changes
	case *ProcessReply:
		if m.Batch != nil {
			return &m.Batch.Changes
		}
	case *FireRequest:
		return &m.Changes
	}
	return nil
}

func (codec) Marshal(v any) ([]byte, error) {
	p := changesOf(v)
	if p == nil || len(*p) == 0 {
		body, err := gojson.Marshal(v)
		if err != nil {
			return nil, err
		}
		return append([]byte{'J'}, body...), nil
	}
	changes := *p
	*p = nil // the message is the caller's own, built for this call
	head, err := gojson.Marshal(v)
	*p = changes
	if err != nil {
		return nil, err
	}
	if len(head) > math.MaxInt32 {
		return nil, fmt.Errorf("plugin message: %d bytes of JSON", len(head))
	}
	size := 5 + len(head) + binary.MaxVarintLen64
	for i := range changes {
		size += changeSize(&changes[i])
	}
	out := make([]byte, 0, size)
	out = append(out, 'B')
	out = binary.BigEndian.AppendUint32(out, uint32(len(head)))
	out = append(out, head...)
	out = binary.AppendUvarint(out, uint64(len(changes)))
	for i := range changes {
		out = writeChange(out, &changes[i])
	}
	return out, nil
}

var errFraming = errors.New("plugin message: bad framing")

// Unmarshal reads what Marshal wrote. The other side is not trusted: a
// message that does not add up is an error, never a panic.
func (codec) Unmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return errFraming
	}
	switch data[0] {
	case 'J':
		return gojson.Unmarshal(data[1:], v)
	case 'B':
	default:
		return fmt.Errorf("%w: first byte %q", errFraming, data[0])
	}
	if len(data) < 5 {
		return errFraming
	}
	n := binary.BigEndian.Uint32(data[1:5])
	if uint64(n) > uint64(len(data)-5) {
		return fmt.Errorf("%w: %d bytes of JSON announced, %d there", errFraming, n, len(data)-5)
	}
	if err := gojson.Unmarshal(data[5:5+n], v); err != nil {
		return err
	}
	p := changesOf(v)
	if p == nil {
		return fmt.Errorf("%w: changes for a %T", errFraming, v)
	}
	// gRPC reuses data after Unmarshal: the items get a copy of their own.
	r := reader{b: bytes.Clone(data[5+n:])}
	count := r.uvarint()
	if r.err == nil && count > uint64(len(r.b)) { // a change takes more than a byte
		return fmt.Errorf("%w: %d changes announced in %d bytes", errFraming, count, len(r.b))
	}
	changes := make([]pipeline.Change, count)
	for i := range changes {
		r.change(&changes[i])
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last change", errFraming, len(r.b))
	}
	*p = changes
	return nil
}

// writeChange appends c: seq, model, op, pk, sk, item (uvarint 0: none,
// else length+1, then the bytes), version wall (zigzag), counter and
// origin, origin, time (zigzag). Strings are uvarint length and bytes.
func writeChange(out []byte, c *pipeline.Change) []byte {
	out = binary.AppendUvarint(out, c.Seq)
	out = appendString(out, c.Model)
	out = appendString(out, string(c.Op))
	out = appendString(out, c.Key.PK)
	out = appendString(out, c.Key.SK)
	if c.Item == nil {
		out = binary.AppendUvarint(out, 0)
	} else {
		out = binary.AppendUvarint(out, uint64(len(c.Item))+1)
		out = append(out, c.Item...)
	}
	out = binary.AppendVarint(out, c.Version.Wall)
	out = binary.AppendUvarint(out, uint64(c.Version.Counter))
	out = appendString(out, c.Version.Origin)
	out = appendString(out, c.Origin)
	return binary.AppendVarint(out, c.Time)
}

func changeSize(c *pipeline.Change) int {
	return 9*binary.MaxVarintLen64 + len(c.Model) + len(c.Op) + len(c.Key.PK) + len(c.Key.SK) + len(c.Item) + len(c.Version.Origin) + len(c.Origin)
}

func appendString(out []byte, s string) []byte {
	out = binary.AppendUvarint(out, uint64(len(s)))
	return append(out, s...)
}

// reader reads changes; the first error sticks.
type reader struct {
	b   []byte
	err error
	// last strings read, reused when the next is the same (models, ops
	// and origins repeat through a batch).
	model, op, origin string
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errFraming, what)
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.fail("a number")
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *reader) varint() int64 {
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.fail("a number")
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail(fmt.Sprintf("%d bytes announced, %d left", n, len(r.b)))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// string reads a string, reusing *last when it is the same.
func (r *reader) string(last *string) string {
	b := r.bytes(r.uvarint())
	if last != nil && string(b) == *last {
		return *last
	}
	s := string(b)
	if last != nil {
		*last = s
	}
	return s
}

func (r *reader) change(c *pipeline.Change) {
	c.Seq = r.uvarint()
	c.Model = r.string(&r.model)
	c.Op = pipeline.Op(r.string(&r.op))
	c.Key.PK = r.string(nil)
	c.Key.SK = r.string(nil)
	if n := r.uvarint(); n > 0 {
		c.Item = r.bytes(n - 1)
	}
	c.Version.Wall = r.varint()
	counter := r.uvarint()
	if counter > math.MaxUint32 {
		r.fail("a version counter over 32 bits")
	}
	c.Version.Counter = uint32(counter)
	c.Version.Origin = r.string(&r.origin)
	c.Origin = r.string(&r.origin)
	c.Time = r.varint()
}
