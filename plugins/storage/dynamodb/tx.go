package dynamodb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/iotod/iotod/pipeline"
)

// MaxWritesPerUpdate is the most records one Update may write (put or
// delete): DynamoDB's TransactWriteItems limit.
const MaxWritesPerUpdate = 100

// unprocessedError is a batch request DynamoDB left partly undone: retried
// with backoff like throttling.
type unprocessedError struct{}

func (unprocessedError) Error() string        { return "DynamoDB left part of the batch unprocessed" }
func (unprocessedError) RetryableError() bool { return true }

var errUnprocessed error = unprocessedError{}

// expired reports whether rec's TTL has passed: DynamoDB deletes expired
// items lazily, the store hides them at once.
func (s *Store) expired(rec *pipeline.Record) bool {
	return rec.Expires != 0 && rec.Expires <= s.now().UnixMilli()
}

// seen is what a transaction read at a key: its write is conditioned on it.
type seen struct {
	exists  bool
	version types.AttributeValue // _version, nil when the item has none
	updated types.AttributeValue // the updated field, for items without _version
}

func (s *Store) seenOf(attrs map[string]types.AttributeValue) seen {
	if attrs == nil {
		return seen{}
	}
	return seen{exists: true, version: attrs[versionAttr], updated: attrs[s.l.updated]}
}

// get reads the record at key with a consistent GetItem. An expired
// record is not found, but seen says it is there.
func (s *Store) get(ctx context.Context, key pipeline.Key) (*pipeline.Record, seen, error) {
	notFound := fmt.Errorf("dynamodb table %q: key %s: %w", s.cfg.Table, key, pipeline.ErrNotFound)
	if key.PK == "" || key.SK == "" || !utf8.ValidString(key.PK) || !utf8.ValidString(key.SK) {
		return nil, seen{}, notFound // DynamoDB cannot hold such a key
	}
	var out *dynamodb.GetItemOutput
	err := s.call(ctx, "get", key.String(), func(ctx context.Context) (err error) {
		out, err = s.api.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      aws.String(s.cfg.Table),
			Key:            s.l.keyAttrs(key),
			ConsistentRead: aws.Bool(s.cfg.ConsistentRead),
		})
		return err
	})
	if err != nil {
		return nil, seen{}, err
	}
	return s.recordOf(key, out.Item)
}

// recordOf is the record of the item attrs read at key (nil or empty:
// nothing there), and what the read saw. An expired record is not found,
// but seen says it is there.
func (s *Store) recordOf(key pipeline.Key, attrs map[string]types.AttributeValue) (*pipeline.Record, seen, error) {
	if len(attrs) == 0 {
		return nil, seen{}, fmt.Errorf("dynamodb table %q: key %s: %w", s.cfg.Table, key, pipeline.ErrNotFound)
	}
	rec, err := s.l.fromAttrs(attrs)
	if err != nil {
		return nil, seen{}, err
	}
	if s.expired(rec) {
		return nil, s.seenOf(attrs), fmt.Errorf("dynamodb table %q: key %s: %w", s.cfg.Table, key, pipeline.ErrNotFound)
	}
	return rec, s.seenOf(attrs), nil
}

// readTx reads the table for View.
type readTx struct{ s *Store }

func (t *readTx) Get(ctx context.Context, key pipeline.Key) (*pipeline.Record, error) {
	rec, _, err := t.s.get(ctx, key)
	return rec, err
}

func (t *readTx) Scan(ctx context.Context, q pipeline.Query, fn func(*pipeline.Record, pipeline.Position) (bool, error)) error {
	return t.s.scan(ctx, q, func(rec *pipeline.Record, pos pipeline.Position, _ map[string]types.AttributeValue) (bool, error) {
		return fn(rec, pos)
	})
}

// write is a buffered Put (rec set) or Delete (rec nil).
type write struct {
	key   pipeline.Key
	rec   *pipeline.Record
	attrs map[string]types.AttributeValue
}

// writeTx is one run of an Update's function: reads recorded, writes
// buffered until commit.
type writeTx struct {
	s      *Store
	reads  map[pipeline.Key]seen
	writes map[pipeline.Key]*write
	order  []pipeline.Key
	// fetched holds what Prefetch read: the item's attributes, or nil
	// for a key that holds nothing.
	fetched map[pipeline.Key]map[string]types.AttributeValue
}

var _ pipeline.Prefetcher = (*writeTx)(nil)

// maxBatchGetKeys is BatchGetItem's limit of keys per call.
const maxBatchGetKeys = 100

// Prefetch reads keys with consistent BatchGetItems (100 keys a call), so
// the Gets that follow cost no call of their own.
func (t *writeTx) Prefetch(ctx context.Context, keys []pipeline.Key) error {
	var want []pipeline.Key
	seenKey := map[pipeline.Key]bool{}
	for _, k := range keys {
		_, done := t.fetched[k]
		if done || seenKey[k] || t.writes[k] != nil || !holdable(k) {
			continue
		}
		seenKey[k] = true
		want = append(want, k)
	}
	if t.fetched == nil {
		t.fetched = map[pipeline.Key]map[string]types.AttributeValue{}
	}
	for start := 0; start < len(want); start += maxBatchGetKeys {
		chunk := want[start:min(start+maxBatchGetKeys, len(want))]
		got := map[pipeline.Key]map[string]types.AttributeValue{}
		if err := t.s.batchGet(ctx, chunk, got); err != nil {
			return err
		}
		for _, k := range chunk {
			t.fetched[k] = got[k] // nil: nothing there
		}
	}
	return nil
}

// holdable reports whether DynamoDB can hold key (non-empty UTF-8 parts
// within its key size limits); a request naming another fails whole.
func holdable(k pipeline.Key) bool {
	return k.PK != "" && k.SK != "" && len(k.PK) <= pipeline.MaxPKLen && len(k.SK) <= pipeline.MaxSKLen &&
		utf8.ValidString(k.PK) && utf8.ValidString(k.SK)
}

func newWriteTx(s *Store) *writeTx {
	return &writeTx{s: s, reads: map[pipeline.Key]seen{}, writes: map[pipeline.Key]*write{}}
}

// observe records what the transaction saw at key, the first time.
func (t *writeTx) observe(key pipeline.Key, sn seen) {
	if _, ok := t.reads[key]; !ok {
		t.reads[key] = sn
	}
}

func (t *writeTx) Get(ctx context.Context, key pipeline.Key) (*pipeline.Record, error) {
	if w, ok := t.writes[key]; ok {
		if w.rec == nil || t.s.expired(w.rec) {
			return nil, fmt.Errorf("dynamodb table %q: key %s: %w", t.s.cfg.Table, key, pipeline.ErrNotFound)
		}
		return cloneRecord(w.rec), nil
	}
	if attrs, ok := t.fetched[key]; ok {
		rec, sn, err := t.s.recordOf(key, attrs)
		if err == nil || errors.Is(err, pipeline.ErrNotFound) {
			t.observe(key, sn)
		}
		return rec, err
	}
	rec, sn, err := t.s.get(ctx, key)
	if err == nil || errors.Is(err, pipeline.ErrNotFound) {
		t.observe(key, sn)
	}
	return rec, err
}

// Scan walks the table as Get reads it, with the transaction's own
// buffered writes laid over; the records it returns count as read.
func (t *writeTx) Scan(ctx context.Context, q pipeline.Query, fn func(*pipeline.Record, pipeline.Position) (bool, error)) error {
	if len(t.writes) == 0 {
		return t.s.scan(ctx, q, func(rec *pipeline.Record, pos pipeline.Position, attrs map[string]types.AttributeValue) (bool, error) {
			t.observe(rec.Key, t.s.seenOf(attrs))
			return fn(rec, pos)
		})
	}
	p, err := t.s.plan(q)
	if err != nil {
		return err
	}
	type hit struct {
		rec *pipeline.Record
		pos pipeline.Position
	}
	var hits []hit
	err = t.s.scan(ctx, q, func(rec *pipeline.Record, pos pipeline.Position, attrs map[string]types.AttributeValue) (bool, error) {
		t.observe(rec.Key, t.s.seenOf(attrs))
		if _, mine := t.writes[rec.Key]; !mine {
			hits = append(hits, hit{rec, pos})
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range t.order {
		w := t.writes[k]
		if w.rec == nil || t.s.expired(w.rec) {
			continue
		}
		if pos, ok := p.position(w.rec); ok && p.after(pos) {
			hits = append(hits, hit{cloneRecord(w.rec), pos})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		if q.Reverse {
			return p.compare(b.pos, a.pos)
		}
		return p.compare(a.pos, b.pos)
	})
	for _, h := range hits {
		more, err := fn(h.rec, h.pos)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *writeTx) Put(ctx context.Context, rec *pipeline.Record) error {
	if rec == nil {
		return fmt.Errorf("%w: dynamodb table %q: put of a nil record", pipeline.ErrInvalid, t.s.cfg.Table)
	}
	r := cloneRecord(rec)
	if r.Model == tombstoneModel && t.s.cfg.TombstoneTTL > 0 {
		least := t.s.now().Add(t.s.cfg.TombstoneTTL + time.Second - 1).UnixMilli()
		if least > r.Expires {
			r.Expires = least
		}
	}
	attrs, err := t.s.l.toAttrs(r)
	if err != nil {
		return err
	}
	r.Expires -= r.Expires % 1000 // DynamoDB keeps seconds
	return t.buffer(&write{key: r.Key, rec: r, attrs: attrs})
}

func (t *writeTx) Delete(_ context.Context, key pipeline.Key) error {
	if key.PK == "" || key.SK == "" || !utf8.ValidString(key.PK) || !utf8.ValidString(key.SK) {
		return nil // no such key can exist in DynamoDB
	}
	return t.buffer(&write{key: key})
}

func (t *writeTx) buffer(w *write) error {
	if _, ok := t.writes[w.key]; !ok {
		if len(t.order) >= MaxWritesPerUpdate {
			return fmt.Errorf("%w: dynamodb table %q: key %s: an update writes at most %d items (DynamoDB TransactWriteItems); write larger batches in several updates",
				pipeline.ErrTooLarge, t.s.cfg.Table, w.key, MaxWritesPerUpdate)
		}
		t.order = append(t.order, w.key)
	}
	t.writes[w.key] = w
	return nil
}

func (t *writeTx) Emit(context.Context, *pipeline.Change) error {
	return fmt.Errorf("dynamodb table %q: emit: %w", t.s.cfg.Table, ErrNoOutbox)
}

// condition is the write's condition on what the transaction read at its
// key: absent, or the same _version (for items without one, the same
// updated value); none when it did not read the key.
func (t *writeTx) condition(key pipeline.Key) (*string, map[string]string, map[string]types.AttributeValue) {
	sn, ok := t.reads[key]
	if !ok {
		return nil, nil, nil
	}
	names := map[string]string{"#pk": t.s.l.hash}
	if !sn.exists {
		return aws.String("attribute_not_exists(#pk)"), names, nil
	}
	names["#ver"] = versionAttr
	if sn.version != nil {
		delete(names, "#pk")
		return aws.String("#ver = :ver"), names, map[string]types.AttributeValue{":ver": sn.version}
	}
	if sn.updated != nil {
		names["#upd"] = t.s.l.updated
		return aws.String("attribute_exists(#pk) AND attribute_not_exists(#ver) AND #upd = :upd"), names,
			map[string]types.AttributeValue{":upd": sn.updated}
	}
	return aws.String("attribute_exists(#pk) AND attribute_not_exists(#ver)"), names, nil
}

// commit writes the buffered writes: one conditional PutItem or DeleteItem
// for a single write, one TransactWriteItems for several. A failed
// condition is errConflict.
func (t *writeTx) commit(ctx context.Context) error {
	switch len(t.order) {
	case 0:
		return nil
	case 1:
		return t.commitOne(ctx, t.writes[t.order[0]])
	}
	items := make([]types.TransactWriteItem, 0, len(t.order))
	for _, k := range t.order {
		w := t.writes[k]
		cond, names, values := t.condition(k)
		if w.rec != nil {
			items = append(items, types.TransactWriteItem{Put: &types.Put{
				TableName: aws.String(t.s.cfg.Table), Item: w.attrs,
				ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values}})
		} else {
			items = append(items, types.TransactWriteItem{Delete: &types.Delete{
				TableName: aws.String(t.s.cfg.Table), Key: t.s.l.keyAttrs(k),
				ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values}})
		}
	}
	in := &dynamodb.TransactWriteItemsInput{TransactItems: items, ClientRequestToken: aws.String(uuid.NewString())}
	what := fmt.Sprintf("transaction of %d items (%s …)", len(items), t.order[0])
	return t.s.call(ctx, "write", what, func(ctx context.Context) error {
		_, err := t.s.api.TransactWriteItems(ctx, in)
		var tce *types.TransactionCanceledException
		if errors.As(err, &tce) {
			var keys []string
			for i, r := range tce.CancellationReasons {
				if aws.ToString(r.Code) == "ConditionalCheckFailed" && i < len(t.order) {
					keys = append(keys, t.order[i].String())
				}
			}
			if len(keys) > 0 {
				return fmt.Errorf("%w (at %s): %w", errConflict, strings.Join(keys, ", "), err)
			}
		}
		return err
	})
}

func (t *writeTx) commitOne(ctx context.Context, w *write) error {
	cond, names, values := t.condition(w.key)
	return t.s.call(ctx, "write", w.key.String(), func(ctx context.Context) error {
		var err error
		if w.rec != nil {
			_, err = t.s.api.PutItem(ctx, &dynamodb.PutItemInput{
				TableName: aws.String(t.s.cfg.Table), Item: w.attrs,
				ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values})
		} else {
			_, err = t.s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName: aws.String(t.s.cfg.Table), Key: t.s.l.keyAttrs(w.key),
				ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values})
		}
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return fmt.Errorf("%w: %w", errConflict, err)
		}
		return err
	})
}

func cloneRecord(r *pipeline.Record) *pipeline.Record {
	c := *r
	c.Item = bytes.Clone(r.Item)
	c.Indexes = slices.Clone(r.Indexes)
	return &c
}
