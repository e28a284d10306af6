package badger

import (
	"bytes"
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/iotod/iotod/pipeline"
)

// scanPlan is a query turned into a key range [lo, hi) under prefix, plus
// the sort condition checked on every entry (it only narrows the range
// further when the query walks several hash values).
type scanPlan struct {
	secondary bool
	space     []byte // prefix of the index: 'r', or 'i' enc(index)
	prefix    []byte
	lo, hi    []byte
	cond      pipeline.SortCond
}

func planScan(q pipeline.Query) (scanPlan, error) {
	if err := q.Sort.Validate(); err != nil {
		return scanPlan{}, fmt.Errorf("badger storage: scan: %w", err)
	}
	p := scanPlan{cond: q.Sort, space: []byte{prefixRecord}}
	if q.Index != "" && q.Index != pipeline.PrimaryIndex {
		p.secondary = true
		p.space = indexSpace(q.Index)
	}
	if q.HashPrefix {
		p.prefix = appendEscaped(clone(p.space), q.Hash)
		p.lo, p.hi = p.prefix, pipeline.PrefixEnd(p.prefix)
	} else {
		p.prefix = appendString(clone(p.space), q.Hash)
		p.lo, p.hi = sortRange(p.prefix, q.Sort)
	}
	if q.After != nil {
		at := appendString(appendString(clone(p.space), q.After.Hash), q.After.Sort)
		if p.secondary {
			at = appendString(appendString(at, q.After.Key.PK), q.After.Key.SK)
		}
		if q.Reverse {
			if bytes.Compare(at, p.hi) < 0 {
				p.hi = at
			}
		} else if next := append(at, 0); bytes.Compare(next, p.lo) > 0 {
			p.lo = next
		}
	}
	return p, nil
}

// sortRange is the key range of the entries under base (one hash value)
// whose sort key meets c. Keys there are base enc(sort) [enc(pk) enc(sk)].
func sortRange(base []byte, c pipeline.SortCond) (lo, hi []byte) {
	at := func(i int) []byte { return appendString(clone(base), c.Values[i]) }
	all := pipeline.PrefixEnd(base)
	switch c.Op {
	case pipeline.SortBegins:
		p := appendEscaped(clone(base), c.Values[0])
		return p, pipeline.PrefixEnd(p)
	case pipeline.SortEQ:
		return at(0), pipeline.PrefixEnd(at(0))
	case pipeline.SortGE:
		return at(0), all
	case pipeline.SortGT:
		return pipeline.PrefixEnd(at(0)), all
	case pipeline.SortLT:
		return base, at(0)
	case pipeline.SortLE:
		return base, pipeline.PrefixEnd(at(0))
	case pipeline.SortBetween:
		return at(0), pipeline.PrefixEnd(at(1))
	default:
		return base, all
	}
}

// Scan walks the entries of q's index in key order (or reverse) and calls
// fn with each live record and its position.
func (t *readTx) Scan(ctx context.Context, q pipeline.Query, fn func(rec *pipeline.Record, pos pipeline.Position) (bool, error)) error {
	p, err := planScan(q)
	if err != nil {
		return err
	}
	if bytes.Compare(p.lo, p.hi) >= 0 {
		return nil
	}
	// Every key in [lo, hi) starts with prefix, and hi is never a stored
	// key, so a reverse seek to hi lands inside the prefix or before it.
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: p.prefix, Reverse: q.Reverse})
	defer it.Close()
	if q.Reverse {
		it.Seek(p.hi)
	} else {
		it.Seek(p.lo)
	}
	for ; it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := it.Item().Key()
		if bytes.Compare(key, p.hi) >= 0 {
			if q.Reverse {
				continue
			}
			return nil
		}
		if bytes.Compare(key, p.lo) < 0 {
			if q.Reverse {
				return nil
			}
			continue
		}
		rec, pos, err := t.entry(p, it.Item())
		if err != nil {
			return err
		}
		if rec == nil || !p.cond.Matches(pos.Sort) {
			continue
		}
		more, err := fn(rec, pos)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// entry decodes the index entry at item and loads its live record, or
// returns a nil record when the record is gone or expired.
func (t *readTx) entry(p scanPlan, item *badger.Item) (*pipeline.Record, pipeline.Position, error) {
	key := item.Key()
	bad := func(err error) error { return fmt.Errorf("badger storage: scan: key %q: %w", key, err) }
	hash, rest, err := readString(key[len(p.space):])
	if err != nil {
		return nil, pipeline.Position{}, bad(err)
	}
	sort, rest, err := readString(rest)
	if err != nil {
		return nil, pipeline.Position{}, bad(err)
	}
	pos := pipeline.Position{Hash: hash, Sort: sort, Key: pipeline.Key{PK: hash, SK: sort}}
	var rec *pipeline.Record
	if p.secondary {
		if pos.Key, _, err = readKey(rest); err != nil {
			return nil, pipeline.Position{}, bad(err)
		}
		if rec, err = t.load(pos.Key); err != nil {
			return nil, pipeline.Position{}, err
		}
	} else {
		val, err := item.ValueCopy(nil)
		if err != nil {
			return nil, pipeline.Position{}, bad(err)
		}
		if rec, err = decodeRecord(pos.Key, val); err != nil {
			return nil, pipeline.Position{}, err
		}
	}
	if rec == nil || t.expired(rec) {
		return nil, pos, nil
	}
	return rec, pos, nil
}

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)+32), b...) }
