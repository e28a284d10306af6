package postgres

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

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
func ownerOf(rec *pipeline.Record, attr string) *string {
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
	return &owner
}

// tombstoneModel is the model of a remove's tombstone (db.TombstoneModel).
const tombstoneModel = "~tombstone"

// Limits of what a btree entry holds (about a third of an 8 KB page):
// larger keys would fail inside the transaction; they are refused first.
const (
	maxKeyBytes   = 2048
	maxEntryBytes = 2600
)

// checkRecord refuses, before anything is sent, a record the tables
// cannot hold, so the transaction stays usable (iotod's database goes on
// with the other changes of a batch after an item's error).
func (s *Store) checkRecord(rec *pipeline.Record) error {
	if rec == nil {
		return fmt.Errorf("%w: %s: put of a nil record", pipeline.ErrInvalid, s.where)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: put %s: %s", pipeline.ErrInvalid, s.where, rec.Key, fmt.Sprintf(format, args...))
	}
	if rec.Expires < 0 {
		return bad("negative expiry")
	}
	if !isText(rec.Model) || !isText(rec.Version.Origin) {
		return bad("the model or version origin is not UTF-8 text without NUL")
	}
	keyLen := len(rec.Key.PK) + len(rec.Key.SK)
	if keyLen > maxKeyBytes {
		return fmt.Errorf("%w: %s: put %s: key of %d bytes, at most %d", pipeline.ErrTooLarge, s.where,
			pipeline.Key{PK: pipeline.Truncate(rec.Key.PK, 64), SK: pipeline.Truncate(rec.Key.SK, 64)}, keyLen, maxKeyBytes)
	}
	for _, e := range rec.Indexes {
		if e.Index == "" || e.Index == pipeline.PrimaryIndex {
			return bad("index entry names index %q", e.Index)
		}
		if n := keyLen + len(e.Index) + len(e.Hash) + len(e.Sort); n > maxEntryBytes {
			return fmt.Errorf("%w: %s: put %s: entry of index %s of %d bytes, at most %d", pipeline.ErrTooLarge, s.where, rec.Key, e.Index, n, maxEntryBytes)
		}
	}
	return nil
}

// isText reports whether s can be a PostgreSQL text value.
func isText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
