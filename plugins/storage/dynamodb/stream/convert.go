package stream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/iotod/iotod/pipeline"
)

// Attribute names and values the conversion reads.
const (
	// VersionAttr is the hidden attribute holding an item's version
	// (pipeline.Version.String), as iotod's database and store write it.
	VersionAttr = "_version"
	// TombstoneModel is the type of the item a replicated remove leaves at
	// its key (db.TombstoneModel).
	TombstoneModel = "~tombstone"
	// addedAttr lists (a string set) the attributes the store added to an
	// item that did not hold them; they are not part of the item.
	addedAttr = "_iotod"
	// valueAttr holds the body of an internal record that the store could
	// not keep as attributes (a JSON text).
	valueAttr = "_value"
	// ttlPrincipal is the user identity of deletes made by DynamoDB's TTL.
	ttlPrincipal = "dynamodb.amazonaws.com"
	// BookkeepingPrefix starts the partition key of iotod's own items
	// (stream leases and checkpoints, meta): their records are skipped.
	BookkeepingPrefix = "~"
)

// tombstoneModelAttrs are the attributes that may name the model a
// tombstone was left by: "_model", or "model" as the store keeps the body
// {"model": …, "owner": …} of db's tombstone record.
var tombstoneModelAttrs = []string{"_model", "model"}

// Skip says why a stream record gives no change.
type Skip string

// The reasons a record is skipped. Each is counted, never logged per
// record.
const (
	// SkipBookkeeping: an item of iotod's own (partition key "~…"):
	// stream leases and checkpoints, meta.
	SkipBookkeeping Skip = "bookkeeping"
	// SkipInternal: a record of an internal model ("~…") other than a new
	// tombstone, or a tombstone deleted (expired) from the table.
	SkipInternal Skip = "internal"
	// SkipNoModel: an item without a type attribute belongs to no model.
	SkipNoModel Skip = "no_model"
	// SkipExpired: an item deleted by DynamoDB's TTL; devices expire their
	// copies themselves.
	SkipExpired Skip = "expired"
	// SkipUnchanged: a write that changed nothing (same image, or a
	// tombstone rewritten with the same version).
	SkipUnchanged Skip = "unchanged"
	// SkipInvalid: a record that cannot become a change (no string keys,
	// no image, a value JSON cannot carry); Convert's error says why.
	SkipInvalid Skip = "invalid"
)

// Converter turns DynamoDB stream records (NEW_AND_OLD_IMAGES) into
// replication changes. Set Site; the other fields have defaults. It is
// safe for concurrent use; do not copy it after first use.
type Converter struct {
	// Site is the cloud site: the origin of writes made without iotod's
	// version (OneTable, the SDK, the console), so that they are sent to
	// every device they route to.
	Site string
	// TypeField is the attribute naming an item's model. Default "_type".
	TypeField string
	// UpdatedField is the attribute holding an item's update time (an ISO
	// 8601 date, or epoch milliseconds). Default "updated".
	UpdatedField string
	// HashKey and SortKey are the table's key attributes. Default pk, sk.
	HashKey, SortKey string
	// Clock stamps writes that have neither a version nor a readable
	// update time, and removes made outside iotod. Nil: a clock of Site.
	Clock *pipeline.Clock
	// Now is the wall clock (nil: time.Now); it is the change's Time when
	// a record has no creation time.
	Now func() time.Time

	once sync.Once
}

func (c *Converter) typeField() string    { return or(c.TypeField, "_type") }
func (c *Converter) updatedField() string { return or(c.UpdatedField, "updated") }
func (c *Converter) hashKey() string      { return or(c.HashKey, "pk") }
func (c *Converter) sortKey() string      { return or(c.SortKey, "sk") }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (c *Converter) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Convert turns one stream record into a change. When the record gives no
// change it returns the reason (and, for SkipInvalid, an error saying
// what is wrong with the record, naming its key when it has one).
//
//   - INSERT is a create, MODIFY an update (a create when the old image was
//     a tombstone), REMOVE a remove of the old image's model. A new image
//     of type "~tombstone" is a remove of the model it names.
//   - The model is the item's type attribute; the key its pk/sk; the item
//     the new image as JSON: numbers as their exact text, maps as objects,
//     lists and sets as arrays, binary as base64, NULL as null.
//   - The version is the item's _version and the origin that version's
//     origin, so a device's own change is not sent back to it. A write
//     made outside iotod (no _version, an unreadable one, or a MODIFY that
//     kept the old image's _version, as OneTable's update does) gets a
//     version from its updated attribute, or from the converter's clock
//     when that is missing or not newer than the version it replaces, with
//     the origin Site; the item's _version is set to it.
func (c *Converter) Convert(r *types.Record) (pipeline.Change, Skip, error) {
	if r == nil || r.Dynamodb == nil {
		return pipeline.Change{}, SkipInvalid, errors.New("stream record without its dynamodb part")
	}
	sr := r.Dynamodb
	key, err := c.key(sr)
	if err != nil {
		return pipeline.Change{}, SkipInvalid, err
	}
	if strings.HasPrefix(key.PK, BookkeepingPrefix) {
		return pipeline.Change{}, SkipBookkeeping, nil
	}
	when := c.now()
	if t := sr.ApproximateCreationDateTime; t != nil && !t.IsZero() {
		when = *t
	}
	ch := pipeline.Change{Key: key, Time: when.UnixMilli()}
	switch r.EventName {
	case types.OperationTypeRemove:
		return c.remove(r, ch)
	case types.OperationTypeInsert, types.OperationTypeModify:
	default:
		return pipeline.Change{}, SkipInvalid, fmt.Errorf("key %s: unknown stream event %q", key, r.EventName)
	}
	img, old := sr.NewImage, sr.OldImage
	if img == nil {
		return pipeline.Change{}, SkipInvalid, fmt.Errorf("key %s: %s record without a new image (the stream must be NEW_AND_OLD_IMAGES)", key, r.EventName)
	}
	if r.EventName == types.OperationTypeModify && old != nil && reflect.DeepEqual(old, img) {
		return pipeline.Change{}, SkipUnchanged, nil
	}
	model, ok := c.str(img, c.typeField())
	switch {
	case !ok || model == "":
		return pipeline.Change{}, SkipNoModel, nil
	case model == TombstoneModel:
		return c.tombstone(r, ch)
	case strings.HasPrefix(model, BookkeepingPrefix):
		return pipeline.Change{}, SkipInternal, nil
	}
	ch.Model = model
	ch.Op = pipeline.OpCreate
	if r.EventName == types.OperationTypeModify && old != nil {
		if om, _ := c.str(old, c.typeField()); om != TombstoneModel && om != "" {
			ch.Op = pipeline.OpUpdate
		}
	}
	v, own := c.itemVersion(img)
	if own && r.EventName == types.OperationTypeModify && old != nil {
		if ov, ok := c.str(old, VersionAttr); ok && ov == v.String() {
			own = false // written outside iotod, keeping iotod's last version
		}
	}
	if !own {
		v = c.foreignVersion(img, v)
	}
	ch.Version, ch.Origin = v, v.Origin
	item, err := c.itemJSON(img, own, v)
	if err != nil {
		return pipeline.Change{}, SkipInvalid, fmt.Errorf("%s %s: %w", model, key, err)
	}
	ch.Item = item
	return ch, "", nil
}

// remove converts a REMOVE record: a delete made outside iotod (iotod
// removes by writing a tombstone), or a tombstone expiring.
func (c *Converter) remove(r *types.Record, ch pipeline.Change) (pipeline.Change, Skip, error) {
	old := r.Dynamodb.OldImage
	if old == nil {
		return pipeline.Change{}, SkipInvalid, fmt.Errorf("key %s: REMOVE record without an old image (the stream must be NEW_AND_OLD_IMAGES)", ch.Key)
	}
	model, ok := c.str(old, c.typeField())
	switch {
	case !ok || model == "":
		return pipeline.Change{}, SkipNoModel, nil
	case strings.HasPrefix(model, BookkeepingPrefix):
		return pipeline.Change{}, SkipInternal, nil // a tombstone or meta record going away
	}
	if id := r.UserIdentity; id != nil && id.PrincipalId != nil && *id.PrincipalId == ttlPrincipal {
		return pipeline.Change{}, SkipExpired, nil
	}
	prior, _ := c.itemVersion(old)
	ch.Model, ch.Op = model, pipeline.OpRemove
	ch.Version = c.stamp(prior, pipeline.Version{Wall: ch.Time})
	ch.Origin = ch.Version.Origin
	return ch, "", nil
}

// tombstone converts a new image of type "~tombstone": the remove of the
// model it names, with the tombstone's version.
func (c *Converter) tombstone(r *types.Record, ch pipeline.Change) (pipeline.Change, Skip, error) {
	img, old := r.Dynamodb.NewImage, r.Dynamodb.OldImage
	model := c.tombstoneModel(img)
	if model == "" {
		return pipeline.Change{}, SkipInvalid, fmt.Errorf("key %s: tombstone without the removed model (attribute %s)", ch.Key, strings.Join(tombstoneModelAttrs, " or "))
	}
	v, own := c.itemVersion(img)
	if old != nil {
		ov, _ := c.str(old, VersionAttr)
		if om, _ := c.str(old, c.typeField()); om == TombstoneModel && own && ov == v.String() {
			return pipeline.Change{}, SkipUnchanged, nil // the same remove, its expiry rewritten
		}
	}
	if !own {
		prior, _ := c.itemVersion(old)
		v = c.stamp(prior, pipeline.Version{})
	}
	ch.Model, ch.Op, ch.Version, ch.Origin = model, pipeline.OpRemove, v, v.Origin
	return ch, "", nil
}

func (c *Converter) tombstoneModel(img map[string]types.AttributeValue) string {
	for _, a := range tombstoneModelAttrs {
		if m, ok := c.str(img, a); ok && m != "" {
			return m
		}
	}
	if body, ok := c.str(img, valueAttr); ok {
		var t struct {
			Model string `json:"model"`
		}
		if json.Unmarshal([]byte(body), &t) == nil {
			return t.Model
		}
	}
	return ""
}

// itemVersion reads an image's _version; own is false when it has none or
// one that is not a valid version.
func (c *Converter) itemVersion(img map[string]types.AttributeValue) (pipeline.Version, bool) {
	s, ok := c.str(img, VersionAttr)
	if !ok {
		return pipeline.Version{}, false
	}
	v, err := pipeline.ParseVersion(s)
	if err != nil || v.Validate() != nil {
		return pipeline.Version{}, false
	}
	return v, true
}

// foreignVersion stamps a write made outside iotod: its updated time with
// the origin Site, or the clock's next version when there is none or it is
// not newer than prior (the version the write kept or replaced).
func (c *Converter) foreignVersion(img map[string]types.AttributeValue, prior pipeline.Version) pipeline.Version {
	if t, ok := UpdatedTime(img[c.updatedField()]); ok {
		v := pipeline.Version{Wall: t.UnixMilli(), Origin: c.Site}
		if v.Wall > 0 && v.Compare(prior) > 0 {
			c.clock().Observe(v)
			return v
		}
	}
	return c.stamp(prior, pipeline.Version{})
}

// stamp returns the clock's next version after observing prior and at.
func (c *Converter) stamp(prior, at pipeline.Version) pipeline.Version {
	clk := c.clock()
	if !prior.IsZero() {
		clk.Observe(prior)
	}
	if at.Wall > 0 {
		clk.Observe(at)
	}
	return clk.Next()
}

func (c *Converter) clock() *pipeline.Clock {
	c.once.Do(func() {
		if c.Clock == nil {
			c.Clock = pipeline.NewClock(c.Site)
		}
	})
	return c.Clock
}

// key reads the record's primary key from its Keys (or images).
func (c *Converter) key(sr *types.StreamRecord) (pipeline.Key, error) {
	var k pipeline.Key
	for _, m := range []map[string]types.AttributeValue{sr.Keys, sr.NewImage, sr.OldImage} {
		if m == nil {
			continue
		}
		pk, ok1 := c.str(m, c.hashKey())
		sk, ok2 := c.str(m, c.sortKey())
		if ok1 && ok2 && pk != "" && sk != "" {
			k = pipeline.Key{PK: pk, SK: sk}
			return k, nil
		}
	}
	return k, fmt.Errorf("stream record without string key attributes %q and %q", c.hashKey(), c.sortKey())
}

func (c *Converter) str(m map[string]types.AttributeValue, name string) (string, bool) {
	s, ok := m[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return s.Value, true
}

// itemJSON renders an image as the change's item: every attribute but
// _iotod and those it lists (added by the store, not part of the item).
// A foreign write's _version is set to the version it was given.
func (c *Converter) itemJSON(img map[string]types.AttributeValue, own bool, v pipeline.Version) ([]byte, error) {
	var added []string
	if a, ok := img[addedAttr].(*types.AttributeValueMemberSS); ok {
		added = a.Value
	}
	names := make([]string, 0, len(img))
	for name := range img {
		if name == addedAttr || slices.Contains(added, name) {
			continue
		}
		names = append(names, name)
	}
	if !own {
		if !slices.Contains(names, VersionAttr) {
			names = append(names, VersionAttr)
		}
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(&b, name)
		b.WriteByte(':')
		if !own && name == VersionAttr {
			writeString(&b, v.String())
			continue
		}
		if err := writeValue(&b, img[name], 0); err != nil {
			return nil, fmt.Errorf("attribute %q: %w", name, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ItemJSON renders DynamoDB Streams attributes as a JSON object with
// sorted names: strings, numbers as their exact text, booleans, null,
// maps as objects, lists and sets as arrays, binary as base64 strings.
func ItemJSON(attrs map[string]types.AttributeValue) ([]byte, error) {
	return (&Converter{}).itemJSON(attrs, true, pipeline.Version{})
}

// maxDepth bounds nesting (DynamoDB allows 32 levels).
const maxDepth = 64

// jsonNumber is the JSON number grammar.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

func writeValue(b *bytes.Buffer, av types.AttributeValue, depth int) error {
	if depth > maxDepth {
		return errors.New("nested too deep")
	}
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		writeString(b, v.Value)
	case *types.AttributeValueMemberN:
		return writeNumber(b, v.Value)
	case *types.AttributeValueMemberBOOL:
		if v.Value {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case *types.AttributeValueMemberNULL:
		b.WriteString("null")
	case *types.AttributeValueMemberB:
		writeString(b, base64.StdEncoding.EncodeToString(v.Value))
	case *types.AttributeValueMemberM:
		names := make([]string, 0, len(v.Value))
		for k := range v.Value {
			names = append(names, k)
		}
		slices.Sort(names)
		b.WriteByte('{')
		for i, k := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := writeValue(b, v.Value[k], depth+1); err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
		}
		b.WriteByte('}')
	case *types.AttributeValueMemberL:
		b.WriteByte('[')
		for i, e := range v.Value {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeValue(b, e, depth+1); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		b.WriteByte(']')
	case *types.AttributeValueMemberSS:
		b.WriteByte('[')
		for i, s := range v.Value {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, s)
		}
		b.WriteByte(']')
	case *types.AttributeValueMemberNS:
		b.WriteByte('[')
		for i, s := range v.Value {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeNumber(b, s); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		b.WriteByte(']')
	case *types.AttributeValueMemberBS:
		b.WriteByte('[')
		for i, s := range v.Value {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, base64.StdEncoding.EncodeToString(s))
		}
		b.WriteByte(']')
	case nil:
		return errors.New("missing value")
	default:
		return fmt.Errorf("unknown attribute type %T", av)
	}
	return nil
}

// writeNumber writes a DynamoDB number as its text when that is a JSON
// number, else in a JSON form of the same value (DynamoDB may send forms
// such as "+1", ".5" or "5." in theory).
func writeNumber(b *bytes.Buffer, s string) error {
	if jsonNumber.MatchString(s) {
		b.WriteString(s)
		return nil
	}
	f, ok := new(big.Float).SetPrec(200).SetString(s)
	if !ok || f.IsInf() {
		return fmt.Errorf("%q is not a number", pipeline.Truncate(s, 48))
	}
	b.WriteString(f.Text('g', -1))
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always encodes
	b.Write(enc)
}

// UpdatedTime reads an updated attribute as iotod's database does: an ISO
// 8601 date, or a number of epoch milliseconds (seconds when below 1e11).
func UpdatedTime(av types.AttributeValue) (time.Time, bool) {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z", "2006-01-02"} {
			if t, err := time.Parse(layout, v.Value); err == nil {
				return t, true
			}
		}
	case *types.AttributeValueMemberN:
		f, ok := new(big.Float).SetString(v.Value)
		if !ok {
			return time.Time{}, false
		}
		x, _ := f.Float64()
		if math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) > 1e15 {
			return time.Time{}, false
		}
		if math.Abs(x) < 1e11 {
			return time.UnixMilli(int64(x * 1000)), true
		}
		return time.UnixMilli(int64(x)), true
	}
	return time.Time{}, false
}
