package dynamodb

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotod/iotod/pipeline"
)

// recordError is a record the table cannot hold, or an item that is not a
// record; it wraps pipeline.ErrInvalid and names the table and the key.
func (l *layout) recordError(k pipeline.Key, format string, args ...any) error {
	return fmt.Errorf("%w: dynamodb table %q, key %s: %s", pipeline.ErrInvalid, l.table, k, fmt.Sprintf(format, args...))
}

// toAttrs maps a record onto the table's attributes (docs/dynamodb.md,
// "Item layout"). A record of a model is its item's attributes; the key,
// the type field, the version, the index keys and the TTL attribute are
// taken from the item when it has them (they must then agree with the
// record) and added otherwise, their names listed in _iotod so reading
// gives back the item as written. A record of an internal model ("~…":
// tombstones, meta) always gets them added, and keeps a body that is not
// a canonical JSON object in _value.
func (l *layout) toAttrs(rec *pipeline.Record) (map[string]types.AttributeValue, error) {
	k := rec.Key
	if k.PK == "" || k.SK == "" {
		return nil, l.recordError(k, "DynamoDB key attributes cannot be empty strings")
	}
	if !utf8.ValidString(k.PK) || !utf8.ValidString(k.SK) {
		return nil, l.recordError(k, "the key is not valid UTF-8")
	}
	if rec.Expires < 0 || (rec.Expires > 0 && rec.Expires < 1000) || rec.Expires > maxExpires {
		return nil, l.recordError(k, "expiry %d ms is out of range (1970-01-01T00:00:01Z to year 287396)", rec.Expires)
	}
	if strings.HasPrefix(rec.Model, internalPrefix) {
		return l.internalAttrs(rec)
	}
	attrs, err := jsonToAttrs(rec.Item)
	if err != nil {
		return nil, l.recordError(k, "item of model %q: %v", rec.Model, err)
	}
	if _, ok := attrs[addedAttr]; ok {
		return nil, l.recordError(k, "attribute %q is reserved for iotod", addedAttr)
	}
	var added []string
	set := func(name string, want types.AttributeValue, same func(types.AttributeValue) bool, what string) error {
		have, ok := attrs[name]
		if !ok {
			if want != nil {
				attrs[name] = want
				added = append(added, name)
			}
			return nil
		}
		if want == nil || !same(have) {
			return l.recordError(k, "the item's %q (%s) disagrees with the record's %s", name, describe(have), what)
		}
		return nil
	}
	str := func(s string) func(types.AttributeValue) bool {
		return func(av types.AttributeValue) bool {
			v, ok := av.(*types.AttributeValueMemberS)
			return ok && v.Value == s
		}
	}
	S := func(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
	if err := set(l.hash, S(k.PK), str(k.PK), "key "+strconv.Quote(k.PK)); err != nil {
		return nil, err
	}
	if err := set(l.sort, S(k.SK), str(k.SK), "key "+strconv.Quote(k.SK)); err != nil {
		return nil, err
	}
	var model types.AttributeValue
	if rec.Model != "" {
		model = S(rec.Model)
	}
	if err := set(l.typeField, model, str(rec.Model), "model "+strconv.Quote(rec.Model)); err != nil {
		return nil, err
	}
	var version types.AttributeValue
	if !rec.Version.IsZero() {
		version = S(rec.Version.String())
	}
	if err := set(versionAttr, version, str(rec.Version.String()), "version "+rec.Version.String()); err != nil {
		return nil, err
	}
	if err := l.setIndexes(rec, attrs, set); err != nil {
		return nil, err
	}
	ttl := l.ttlFor(rec.Model)
	secs := rec.Expires / 1000
	if rec.Expires == 0 {
		// A ttl attribute that is not a positive number means no expiry.
		if have, ok := attrs[ttl]; ok && expiresOf(have) != 0 {
			return nil, l.recordError(k, "the item's %q (%s) disagrees with the record's expiry (none)", ttl, describe(have))
		}
	} else if err := set(ttl, &types.AttributeValueMemberN{Value: strconv.FormatInt(secs, 10)}, func(av types.AttributeValue) bool {
		return expiresOf(av) == secs*1000
	}, fmt.Sprintf("expiry %d s", secs)); err != nil {
		return nil, err
	}
	if len(added) > 0 {
		slices.Sort(added)
		attrs[addedAttr] = &types.AttributeValueMemberSS{Value: added}
	}
	return attrs, nil
}

// setIndexes checks or adds the key attributes of each index entry, and
// refuses an item that the table would place in an index the record has no
// entry for.
func (l *layout) setIndexes(rec *pipeline.Record, attrs map[string]types.AttributeValue,
	set func(string, types.AttributeValue, func(types.AttributeValue) bool, string) error) error {
	k := rec.Key
	entries := map[string]pipeline.IndexEntry{}
	for _, e := range rec.Indexes {
		x := l.byName[e.Index]
		if x == nil {
			return l.recordError(k, "index %q is not in the schema's indexes", e.Index)
		}
		if _, dup := entries[e.Index]; dup {
			return l.recordError(k, "two entries for index %q", e.Index)
		}
		entries[e.Index] = e
	}
	// Two indexes may share a key attribute: the entries must agree on it.
	for _, x := range l.indexes {
		e, ok := entries[x.name]
		if !ok {
			if l.inIndex(x, attrs) {
				return l.recordError(k, "the item has the key attributes of index %q but the record has no entry in it", x.name)
			}
			continue
		}
		if x.local {
			if e.Hash != k.PK {
				return l.recordError(k, "local index %q entry hash %q is not the primary hash", x.name, e.Hash)
			}
		} else if err := l.setKey(k, x, x.hash, x.hashType, e.Hash, set); err != nil {
			return err
		}
		if x.sort == "" {
			if e.Sort != "" {
				return l.recordError(k, "index %q has no sort key, the entry has sort %q", x.name, e.Sort)
			}
			continue
		}
		if err := l.setKey(k, x, x.sort, x.sortType, e.Sort, set); err != nil {
			return err
		}
	}
	return nil
}

func (l *layout) setKey(k pipeline.Key, x *index, attr string, t types.ScalarAttributeType, val string,
	set func(string, types.AttributeValue, func(types.AttributeValue) bool, string) error) error {
	if val == "" {
		return l.recordError(k, "index %q: DynamoDB index key attributes cannot be empty strings (%q)", x.name, attr)
	}
	if t == types.ScalarAttributeTypeN {
		if err := checkNumber(val); err != nil {
			return l.recordError(k, "index %q: attribute %q is a number key: %v", x.name, attr, err)
		}
	} else if !utf8.ValidString(val) {
		return l.recordError(k, "index %q: attribute %q is not valid UTF-8", x.name, attr)
	}
	return set(attr, keyValue(t, val), func(av types.AttributeValue) bool {
		s, ok := keyString(av, t)
		if t == types.ScalarAttributeTypeN {
			return ok && compareNumbers(s, val) == 0
		}
		return ok && s == val
	}, fmt.Sprintf("index %q entry %q (the table's %q is of type %s)", x.name, val, attr, t))
}

// inIndex reports whether DynamoDB would place an item with attrs in x.
func (l *layout) inIndex(x *index, attrs map[string]types.AttributeValue) bool {
	if _, ok := keyString(attrs[x.hash], x.hashType); !ok {
		return false
	}
	if x.sort == "" {
		return true
	}
	_, ok := keyString(attrs[x.sort], x.sortType)
	return ok
}

// internalAttrs maps a tombstone or meta record: the store attributes,
// then its body's attributes when the body is a canonical JSON object
// without store attributes, else the body in _value.
func (l *layout) internalAttrs(rec *pipeline.Record) (map[string]types.AttributeValue, error) {
	k := rec.Key
	if len(rec.Indexes) > 0 {
		return nil, l.recordError(k, "a %s record has no index entries", rec.Model)
	}
	var attrs map[string]types.AttributeValue
	if body, err := jsonToAttrs(rec.Item); err == nil && l.plainBody(body) {
		if canon, err := attrsToJSON(body, nil); err == nil && bytes.Equal(canon, rec.Item) {
			attrs = body
		}
	}
	if attrs == nil {
		attrs = map[string]types.AttributeValue{}
		if utf8.Valid(rec.Item) {
			attrs[valueAttr] = &types.AttributeValueMemberS{Value: string(rec.Item)}
		} else {
			attrs[valueAttr] = &types.AttributeValueMemberB{Value: bytes.Clone(rec.Item)}
		}
	}
	attrs[l.hash] = &types.AttributeValueMemberS{Value: k.PK}
	attrs[l.sort] = &types.AttributeValueMemberS{Value: k.SK}
	attrs[l.typeField] = &types.AttributeValueMemberS{Value: rec.Model}
	if !rec.Version.IsZero() {
		attrs[versionAttr] = &types.AttributeValueMemberS{Value: rec.Version.String()}
		if rec.Model == tombstoneModel && l.sync != nil {
			// Into the catch-up type index, at the time of the remove.
			attrs[l.sync.updated] = l.sync.stamp(rec.Version.Wall)
		}
	}
	if rec.Expires != 0 {
		attrs[l.ttlAttr] = &types.AttributeValueMemberN{Value: strconv.FormatInt(rec.Expires/1000, 10)}
	}
	return attrs, nil
}

// plainBody reports whether an internal record's body can be stored as
// attributes: it holds none the store sets.
func (l *layout) plainBody(body map[string]types.AttributeValue) bool {
	for name := range body {
		if l.reserved(name) {
			return false
		}
	}
	return true
}

// reserved names the attributes the store sets on internal records.
func (l *layout) reserved(name string) bool {
	return l.isKeyAttr(name) || name == l.typeField || name == versionAttr || name == addedAttr ||
		name == valueAttr || name == l.ttlAttr
}

// fromAttrs reads a record back from the table's attributes: the inverse of
// toAttrs. Items written by others (OneTable, the SDK) read the same way:
// their model is the type field, their version zero when they have no
// _version, their expiry the model's TTL attribute.
func (l *layout) fromAttrs(attrs map[string]types.AttributeValue) (*pipeline.Record, error) {
	pk, okP := attrs[l.hash].(*types.AttributeValueMemberS)
	sk, okS := attrs[l.sort].(*types.AttributeValueMemberS)
	if !okP || !okS {
		return nil, fmt.Errorf("%w: dynamodb table %q: an item without string keys %q and %q", pipeline.ErrInvalid, l.table, l.hash, l.sort)
	}
	rec := &pipeline.Record{Key: pipeline.Key{PK: pk.Value, SK: sk.Value}}
	if t, ok := attrs[l.typeField]; ok {
		s, ok := t.(*types.AttributeValueMemberS)
		if !ok {
			return nil, l.recordError(rec.Key, "type attribute %q is %s, not a string", l.typeField, describe(t))
		}
		rec.Model = s.Value
	}
	if v, ok := attrs[versionAttr]; ok {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return nil, l.recordError(rec.Key, "version attribute %q is %s, not a string", versionAttr, describe(v))
		}
		ver, err := pipeline.ParseVersion(s.Value)
		if err != nil {
			return nil, l.recordError(rec.Key, "version attribute %q: %v", versionAttr, err)
		}
		rec.Version = ver
	}
	if strings.HasPrefix(rec.Model, internalPrefix) {
		return l.internalFrom(rec, attrs)
	}
	rec.Expires = expiresOf(attrs[l.ttlFor(rec.Model)])
	for _, x := range l.indexes {
		h, ok := keyString(attrs[x.hash], x.hashType)
		if !ok {
			continue
		}
		e := pipeline.IndexEntry{Index: x.name, Hash: h}
		if x.sort != "" {
			if e.Sort, ok = keyString(attrs[x.sort], x.sortType); !ok {
				continue
			}
		}
		rec.Indexes = append(rec.Indexes, e)
	}
	var added []string
	if a, ok := attrs[addedAttr]; ok {
		ss, ok := a.(*types.AttributeValueMemberSS)
		if !ok {
			return nil, l.recordError(rec.Key, "attribute %q is %s, not a string set", addedAttr, describe(a))
		}
		added = ss.Value
	}
	item, err := attrsToJSON(attrs, func(name string) bool { return name == addedAttr || slices.Contains(added, name) })
	if err != nil {
		return nil, l.recordError(rec.Key, "item: %v", err)
	}
	rec.Item = item
	return rec, nil
}

func (l *layout) internalFrom(rec *pipeline.Record, attrs map[string]types.AttributeValue) (*pipeline.Record, error) {
	rec.Expires = expiresOf(attrs[l.ttlAttr])
	switch v := attrs[valueAttr].(type) {
	case *types.AttributeValueMemberS:
		rec.Item = []byte(v.Value)
		return rec, nil
	case *types.AttributeValueMemberB:
		rec.Item = v.Value
		return rec, nil
	case nil:
	default:
		return nil, l.recordError(rec.Key, "attribute %q is %s", valueAttr, describe(v))
	}
	skip := l.reserved
	if rec.Model == tombstoneModel && l.sync != nil {
		skip = func(name string) bool { return l.reserved(name) || name == l.sync.updated }
	}
	item, err := attrsToJSON(attrs, skip)
	if err != nil {
		return nil, l.recordError(rec.Key, "item: %v", err)
	}
	rec.Item = item
	return rec, nil
}

// maxExpires is the latest expiry kept, in Unix milliseconds (2^53).
const maxExpires = 1 << 53

// expiresOf reads a TTL attribute (epoch seconds) as Unix milliseconds;
// anything but a number is no expiry, as DynamoDB's TTL ignores it.
func expiresOf(av types.AttributeValue) int64 {
	n, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	secs, ok := numberSeconds(n.Value)
	if !ok || secs <= 0 || secs > maxExpires/1000 {
		return 0
	}
	return secs * 1000
}

// describe names an attribute value's type and, for scalars, its value.
func describe(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return "string " + strconv.Quote(pipeline.Truncate(v.Value, 64))
	case *types.AttributeValueMemberN:
		return "number " + truncNum(v.Value)
	case *types.AttributeValueMemberBOOL:
		return "boolean " + strconv.FormatBool(v.Value)
	case *types.AttributeValueMemberNULL:
		return "null"
	case *types.AttributeValueMemberM:
		return "a map"
	case *types.AttributeValueMemberL:
		return "a list"
	case *types.AttributeValueMemberSS, *types.AttributeValueMemberNS, *types.AttributeValueMemberBS:
		return "a set"
	case *types.AttributeValueMemberB:
		return "binary"
	}
	return "unknown"
}
