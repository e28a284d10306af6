package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// The catch-up indexes (docs/dynamodb.md, "Catch-up"): global indexes
// sorted by the schema's updated field, one by the owner attribute (a
// device's items), one by the type field (the items of broadcast models,
// and tombstones). Both project every attribute.
const (
	ownerIndex = "iotod-owner"
	typeIndex  = "iotod-type"
)

// isoMillis is the layout of ISO dates as OneTable and iotod write them.
const isoMillis = "2006-01-02T15:04:05.000Z"

// syncLayout is how the catch-up indexes are keyed.
type syncLayout struct {
	owner   string
	updated string
	// updatedType is S for ISO dates, N for epoch milliseconds.
	updatedType types.ScalarAttributeType
	// ready says the table has both indexes; why says what is missing.
	ready bool
	why   string
}

// newSyncLayout keys the catch-up indexes for sch, or says why the
// schema's items cannot be found through them: without an updated time
// on every item, or with dates or owners of different types.
func newSyncLayout(l *layout, sch *schema.Schema, owner string) (*syncLayout, string) {
	if sch == nil {
		return nil, "no schema"
	}
	if sch.Params.Timestamps != schema.TimestampsBoth && sch.Params.Timestamps != schema.TimestampsUpdate {
		return nil, "the schema's timestamps are off, so items have no updated time to index"
	}
	sy := &syncLayout{owner: owner, updated: l.updated, updatedType: types.ScalarAttributeTypeN}
	if sch.Params.IsoDates {
		sy.updatedType = types.ScalarAttributeTypeS
	}
	if l.isKeyAttr(owner) || l.isKeyAttr(l.updated) || owner == l.typeField || owner == l.updated {
		return nil, fmt.Sprintf("the owner attribute %q or the updated field %q is already a key or the type field", owner, l.updated)
	}
	for _, name := range sch.ModelNames {
		m := sch.Models[name]
		if f := m.Fields[l.updated]; f != nil && f.IsoDates != nil && *f.IsoDates != sch.Params.IsoDates {
			return nil, fmt.Sprintf("model %s keeps %s in another date format than the schema", name, l.updated)
		}
		if f := m.Fields[owner]; f != nil && f.Type != schema.TypeString {
			return nil, fmt.Sprintf("model %s's %s is a %s, not a string", name, owner, f.Type)
		}
	}
	return sy, ""
}

// stamp is t as the updated field holds it.
func (sy *syncLayout) stamp(ms int64) types.AttributeValue {
	if sy.updatedType == types.ScalarAttributeTypeS {
		return &types.AttributeValueMemberS{Value: time.UnixMilli(ms).UTC().Format(isoMillis)}
	}
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(ms, 10)}
}

// definitions are the two indexes for CreateTable.
func (sy *syncLayout) definitions(typeField string) []types.GlobalSecondaryIndex {
	def := func(name, hash string) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{
			IndexName: aws.String(name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(sy.updated), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}
	}
	return []types.GlobalSecondaryIndex{def(ownerIndex, sy.owner), def(typeIndex, typeField)}
}

// check finds the indexes in the table: both missing leaves catch-ups
// walking the table (ready false, with why); one with other keys, types
// or projection is an error.
func (sy *syncLayout) check(table, typeField string, desc *types.TableDescription, attrTypes map[string]types.ScalarAttributeType) error {
	want := map[string]string{ownerIndex: sy.owner, typeIndex: typeField}
	found := 0
	for _, g := range desc.GlobalSecondaryIndexes {
		name := aws.ToString(g.IndexName)
		hashWant, ok := want[name]
		if !ok {
			continue
		}
		found++
		h, r := keyNames(g.KeySchema)
		proj := types.ProjectionType("")
		if g.Projection != nil {
			proj = g.Projection.ProjectionType
		}
		if h != hashWant || r != sy.updated || attrTypes[h] != types.ScalarAttributeTypeS || attrTypes[r] != sy.updatedType || proj != types.ProjectionTypeAll {
			return pipeline.Permanent(fmt.Errorf("%w: dynamodb table %q: index %q has keys (%s %s, %s %s) projecting %s; catch-up needs (%s S, %s %s) projecting ALL (docs/dynamodb.md)",
				pipeline.ErrInvalid, table, name, h, attrTypes[h], show(r), attrTypes[r], proj, hashWant, sy.updated, sy.updatedType))
		}
	}
	switch found {
	case 2:
		sy.ready = true
	case 0:
		sy.why = fmt.Sprintf("the table has no indexes %s and %s", ownerIndex, typeIndex)
	default:
		return pipeline.Permanent(fmt.Errorf("%w: dynamodb table %q has only one of the catch-up indexes %s and %s (docs/dynamodb.md)",
			pipeline.ErrInvalid, table, ownerIndex, typeIndex))
	}
	return nil
}

// FindChanges answers a catch-up from the catch-up indexes
// (pipeline.ChangeFinder): the device's items by the owner index, the
// broadcast models' items and every tombstone by the type index, each
// from q.Since on. Index reads are eventually consistent: a write made a
// moment ago may be missing (the live stream sends it).
func (s *Store) FindChanges(ctx context.Context, q pipeline.ChangeQuery, fn func(*pipeline.Record) (bool, error)) error {
	if s.closed.Load() {
		return s.closedErr()
	}
	sy := s.l.sync
	switch {
	case sy == nil || !sy.ready:
		return fmt.Errorf("dynamodb table %q: no catch-up indexes (%s): %w", s.cfg.Table, s.syncWhy, errors.ErrUnsupported)
	case q.Owner != sy.owner:
		return fmt.Errorf("dynamodb table %q: the catch-up index is on %q, the pipeline's owner is %q: %w", s.cfg.Table, sy.owner, q.Owner, errors.ErrUnsupported)
	}
	done := map[pipeline.Key]bool{}
	stopped := false
	visit := func(attrs map[string]types.AttributeValue) (bool, error) {
		rec, err := s.l.fromAttrs(attrs)
		if err != nil {
			return false, err
		}
		if done[rec.Key] || s.expired(rec) {
			return true, nil
		}
		done[rec.Key] = true
		more, err := fn(rec)
		stopped = !more
		return more, err
	}
	run := func(index, hash, value string) error {
		in := &dynamodb.QueryInput{
			TableName:                 aws.String(s.cfg.Table),
			IndexName:                 aws.String(index),
			KeyConditionExpression:    aws.String("#h = :h"),
			ExpressionAttributeNames:  map[string]string{"#h": hash},
			ExpressionAttributeValues: map[string]types.AttributeValue{":h": &types.AttributeValueMemberS{Value: value}},
		}
		if !q.Since.IsZero() {
			*in.KeyConditionExpression += " AND #u >= :u"
			in.ExpressionAttributeNames["#u"] = sy.updated
			in.ExpressionAttributeValues[":u"] = sy.stamp(q.Since.UnixMilli())
		}
		return s.pages(ctx, in, fmt.Sprintf("index %s %s=%s", index, hash, pipeline.Quote(value)), visit)
	}
	if q.Site != "" {
		if err := run(ownerIndex, sy.owner, q.Site); err != nil || stopped {
			return err
		}
	}
	for _, m := range append(q.Broadcast, tombstoneModel) {
		if err := run(typeIndex, s.l.typeField, m); err != nil || stopped {
			return err
		}
	}
	return nil
}

var _ pipeline.ChangeFinder = (*Store)(nil)
