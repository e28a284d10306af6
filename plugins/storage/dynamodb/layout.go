package dynamodb

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// Attribute names and type values of the item layout (docs/dynamodb.md).
const (
	// versionAttr holds a record's version (pipeline.Version.String), the
	// one attribute iotod adds to OneTable's item shape.
	versionAttr = "_version"
	// addedAttr lists (a string set) the store attributes a record's item
	// did not hold and the store added, so that reading gives back the item
	// as written. Items written by iotod's database never need it.
	addedAttr = "_iotod"
	// valueAttr holds the body of an internal record (a meta value) that is
	// not a JSON object.
	valueAttr = "_value"
	// defaultTTLAttr is the TTL attribute when the schema has no ttl field.
	defaultTTLAttr = "_expires"
	// internalPrefix starts the model of iotod's own records (tombstones,
	// meta). OneTable model names cannot start with it.
	internalPrefix = "~"
	// tombstoneModel is the model of a remove's tombstone (db.TombstoneModel).
	tombstoneModel = "~tombstone"
)

// index is a secondary index of the table.
type index struct {
	name string
	// hash and sort are the key attributes; a local index has the
	// primary hash.
	hash, sort         string
	local              bool
	hashType, sortType types.ScalarAttributeType
	// projection is ALL, KEYS_ONLY or INCLUDE (with nonKey); a query of an
	// index that does not project every attribute fetches the items.
	projection types.ProjectionType
	nonKey     []string
}

// layout maps records to the table's attributes: which attributes are the
// keys, the type, the version and the expiry.
type layout struct {
	table      string
	hash, sort string
	typeField  string
	updated    string
	// ttlAttr is the table's TTL attribute; modelTTL the ttl field of each
	// model that has one (its items keep their expiry there).
	ttlAttr  string
	modelTTL map[string]string
	indexes  []*index
	byName   map[string]*index
	// sync keys the catch-up indexes (nil: not used).
	sync *syncLayout
}

// newLayout reads the table layout from the schema (nil: pk/sk, _type, no
// secondary index). ttlAttr overrides the TTL attribute.
func newLayout(table string, sch *schema.Schema, ttlAttr string) (*layout, error) {
	l := &layout{table: table, hash: "pk", sort: "sk", typeField: "_type", updated: "updated",
		modelTTL: map[string]string{}, byName: map[string]*index{}}
	if sch == nil {
		if ttlAttr == "" {
			ttlAttr = defaultTTLAttr
		}
		l.ttlAttr = ttlAttr
		return l, nil
	}
	if sch.Params.TypeField != "" {
		l.typeField = sch.Params.TypeField
	}
	if sch.Params.UpdatedField != "" {
		l.updated = sch.Params.UpdatedField
	}
	primary := sch.Indexes[pipeline.PrimaryIndex]
	if primary == nil || primary.Hash == "" || primary.Sort == "" {
		return nil, fmt.Errorf("%w: dynamodb table %q: the schema's primary index needs a hash and a sort attribute", pipeline.ErrInvalid, table)
	}
	l.hash, l.sort = primary.Hash, primary.Sort
	for _, attr := range []string{l.hash, l.sort} {
		if t := attrType(sch, attr); t != types.ScalarAttributeTypeS {
			return nil, fmt.Errorf("%w: dynamodb table %q: primary key attribute %q must be a string field", pipeline.ErrInvalid, table, attr)
		}
	}
	for _, name := range sch.IndexNames {
		ix := sch.Indexes[name]
		if name == pipeline.PrimaryIndex {
			continue
		}
		x := &index{name: name, hash: ix.Hash, sort: ix.Sort, local: ix.Local || ix.Hash == "", projection: types.ProjectionTypeAll}
		if x.local {
			x.hash = l.hash
			if x.sort == "" {
				return nil, fmt.Errorf("%w: dynamodb table %q: local index %q needs a sort attribute", pipeline.ErrInvalid, table, name)
			}
		}
		x.hashType = attrType(sch, x.hash)
		if x.sort != "" {
			x.sortType = attrType(sch, x.sort)
		}
		switch {
		case ix.Project == "keys":
			x.projection = types.ProjectionTypeKeysOnly
		case len(ix.ProjectAttrs) > 0:
			x.projection = types.ProjectionTypeInclude
			for _, a := range ix.ProjectAttrs {
				if a != l.hash && a != l.sort && a != x.hash && a != x.sort {
					x.nonKey = append(x.nonKey, a)
				}
			}
		}
		l.indexes = append(l.indexes, x)
		l.byName[name] = x
	}
	ttlFields := map[string][]string{}
	for _, mname := range sch.ModelNames {
		m := sch.Models[mname]
		for _, fname := range m.FieldNames {
			if m.Fields[fname].TTL {
				l.modelTTL[mname] = fname
				ttlFields[fname] = append(ttlFields[fname], mname)
			}
		}
	}
	switch {
	case ttlAttr != "":
	case len(ttlFields) == 0:
		ttlAttr = defaultTTLAttr
	case len(ttlFields) == 1:
		for f := range ttlFields {
			ttlAttr = f
		}
	default:
		var uses []string
		for f, models := range ttlFields {
			uses = append(uses, fmt.Sprintf("%s (%s)", f, strings.Join(models, ", ")))
		}
		slices.Sort(uses)
		return nil, fmt.Errorf("%w: dynamodb table %q: the schema's models keep their TTL in different fields: %s; DynamoDB's TTL is on one attribute: set ttl_attribute",
			pipeline.ErrInvalid, table, strings.Join(uses, "; "))
	}
	l.ttlAttr = ttlAttr
	if l.isKeyAttr(ttlAttr) || ttlAttr == l.typeField || ttlAttr == versionAttr || ttlAttr == addedAttr || ttlAttr == valueAttr {
		return nil, fmt.Errorf("%w: dynamodb table %q: ttl attribute %q is also a key, type or iotod attribute", pipeline.ErrInvalid, table, ttlAttr)
	}
	return l, nil
}

// attrType is N when a model declares attr a number (as OneTable defines
// key attributes), else S.
func attrType(sch *schema.Schema, attr string) types.ScalarAttributeType {
	for _, mname := range sch.ModelNames {
		if f := sch.Models[mname].Fields[attr]; f != nil {
			if f.Type == schema.TypeNumber {
				return types.ScalarAttributeTypeN
			}
			return types.ScalarAttributeTypeS
		}
	}
	return types.ScalarAttributeTypeS
}

// isKeyAttr reports whether name is a key attribute of the table or of an
// index.
func (l *layout) isKeyAttr(name string) bool {
	if name == l.hash || name == l.sort {
		return true
	}
	for _, x := range l.indexes {
		if name == x.hash || name == x.sort {
			return true
		}
	}
	return false
}

// ttlFor is the attribute holding the expiry of a model's items.
func (l *layout) ttlFor(model string) string {
	if f, ok := l.modelTTL[model]; ok {
		return f
	}
	return l.ttlAttr
}

// keyAttrs is the primary key of k as attributes.
func (l *layout) keyAttrs(k pipeline.Key) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		l.hash: &types.AttributeValueMemberS{Value: k.PK},
		l.sort: &types.AttributeValueMemberS{Value: k.SK},
	}
}

// keyValue is a key attribute value of type t.
func keyValue(t types.ScalarAttributeType, s string) types.AttributeValue {
	if t == types.ScalarAttributeTypeN {
		return &types.AttributeValueMemberN{Value: s}
	}
	return &types.AttributeValueMemberS{Value: s}
}

// keyString reads a key attribute value of type t; ok is false when av is
// missing or of another type.
func keyString(av types.AttributeValue, t types.ScalarAttributeType) (string, bool) {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value, t != types.ScalarAttributeTypeN
	case *types.AttributeValueMemberN:
		return v.Value, t == types.ScalarAttributeTypeN
	}
	return "", false
}
