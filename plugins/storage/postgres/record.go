package postgres

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"

	"github.com/iotod/iotod/pipeline"
)

// encodeIndexes encodes a record's index entries exactly (JSON would
// replace invalid UTF-8): each entry is its index, hash and sort, each a
// uvarint length then its bytes. No entries: nil (NULL).
func encodeIndexes(entries []pipeline.IndexEntry) []byte {
	if len(entries) == 0 {
		return nil
	}
	var b []byte
	for _, e := range entries {
		for _, s := range [3]string{e.Index, e.Hash, e.Sort} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

var errBadIndexes = errors.New("corrupt encoding")

// decodeIndexes reverses encodeIndexes.
func decodeIndexes(b []byte) ([]pipeline.IndexEntry, error) {
	var out []pipeline.IndexEntry
	for len(b) > 0 {
		var f [3]string
		for i := range f {
			n, size := binary.Uvarint(b)
			if size <= 0 || uint64(len(b)-size) < n {
				return nil, errBadIndexes
			}
			f[i] = string(b[size : size+int(n)])
			b = b[size+int(n):]
		}
		out = append(out, pipeline.IndexEntry{Index: f[0], Hash: f[1], Sort: f[2]})
	}
	return out, nil
}

// ownerOf is the device owning rec, for the catch-up index: the string
// attribute attr of its item, or the owner its tombstone names. Records
// of other internal models (named "~...") and items without the
// attribute (as a string fit for a text column) have none (nil: NULL).
func ownerOf(rec *pipeline.Record, attr string) any {
	if attr == "" {
		return nil
	}
	if rec.Model == tombstoneModel {
		attr = "owner"
	} else if strings.HasPrefix(rec.Model, "~") {
		return nil
	}
	if !bytes.Contains(rec.Item, []byte(`"`+attr+`"`)) && !bytes.Contains(rec.Item, []byte(`\`)) {
		return nil // the usual case of an item without it: no parse
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(rec.Item, &top) != nil {
		return nil
	}
	raw, ok := top[attr]
	if !ok {
		return nil
	}
	var owner string
	if json.Unmarshal(raw, &owner) != nil || owner == "" || !isText(owner) {
		return nil
	}
	return owner
}
