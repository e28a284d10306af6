package dynamodb

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotod/iotod/pipeline"
)

// pageLimits are the Limit of the first query pages: a caller that stops
// early (a find with a limit) reads little; later pages run to DynamoDB's
// 1 MB.
var pageLimits = []int32{100, 400}

// batchGetMax is BatchGetItem's limit of keys per request.
const batchGetMax = 100

// plan is a query resolved against the layout.
type plan struct {
	q pipeline.Query
	// x is the secondary index, nil for the primary.
	x                  *index
	hashAttr, sortAttr string
	hashType, sortType types.ScalarAttributeType
}

func (s *Store) plan(q pipeline.Query) (*plan, error) {
	if err := q.Sort.Validate(); err != nil {
		return nil, fmt.Errorf("dynamodb table %q: scan: %w", s.cfg.Table, err)
	}
	p := &plan{q: q, hashAttr: s.l.hash, sortAttr: s.l.sort, hashType: types.ScalarAttributeTypeS, sortType: types.ScalarAttributeTypeS}
	if q.Index != "" && q.Index != pipeline.PrimaryIndex {
		x := s.l.byName[q.Index]
		if x == nil {
			return nil, fmt.Errorf("%w: dynamodb table %q: scan: index %q is not in the schema", pipeline.ErrInvalid, s.cfg.Table, q.Index)
		}
		p.x, p.hashAttr, p.sortAttr, p.hashType, p.sortType = x, x.hash, x.sort, x.hashType, x.sortType
		if x.sort == "" {
			p.sortType = types.ScalarAttributeTypeS
		}
	}
	if p.sortType == types.ScalarAttributeTypeN {
		if q.Sort.Op == pipeline.SortBegins {
			return nil, fmt.Errorf("%w: dynamodb table %q: scan: index %q has a number sort key: begins does not apply", pipeline.ErrInvalid, s.cfg.Table, q.Index)
		}
		for _, v := range q.Sort.Values {
			if err := checkNumber(v); err != nil {
				return nil, fmt.Errorf("%w: dynamodb table %q: scan: index %q has a number sort key: %v", pipeline.ErrInvalid, s.cfg.Table, q.Index, err)
			}
		}
	}
	if q.HashPrefix && p.hashType == types.ScalarAttributeTypeN {
		return nil, fmt.Errorf("%w: dynamodb table %q: scan: index %q has a number hash key: a hash prefix applies to strings", pipeline.ErrInvalid, s.cfg.Table, q.Index)
	}
	return p, nil
}

// cmp orders two key values of type t as DynamoDB does: strings by their
// UTF-8 bytes, numbers by value.
func cmp(a, b string, t types.ScalarAttributeType) int {
	if t == types.ScalarAttributeTypeN {
		return compareNumbers(a, b)
	}
	return strings.Compare(a, b)
}

// sortMatches reports whether a sort key value meets the condition.
func (p *plan) sortMatches(v string) bool {
	c := p.q.Sort
	at := func(i int) int { return cmp(v, c.Values[i], p.sortType) }
	switch c.Op {
	case pipeline.SortBegins:
		return strings.HasPrefix(v, c.Values[0])
	case pipeline.SortEQ:
		return at(0) == 0
	case pipeline.SortGE:
		return at(0) >= 0
	case pipeline.SortGT:
		return at(0) > 0
	case pipeline.SortLT:
		return at(0) < 0
	case pipeline.SortLE:
		return at(0) <= 0
	case pipeline.SortBetween:
		return at(0) >= 0 && at(1) <= 0
	}
	return true
}

// compare orders positions in the index's key order: hash, sort, then
// (for a secondary index) the primary key.
func (p *plan) compare(a, b pipeline.Position) int {
	if c := cmp(a.Hash, b.Hash, p.hashType); c != 0 {
		return c
	}
	if c := cmp(a.Sort, b.Sort, p.sortType); c != 0 {
		return c
	}
	if c := strings.Compare(a.Key.PK, b.Key.PK); c != 0 {
		return c
	}
	return strings.Compare(a.Key.SK, b.Key.SK)
}

// after reports whether pos comes strictly after q.After in walk order.
func (p *plan) after(pos pipeline.Position) bool {
	if p.q.After == nil {
		return true
	}
	c := p.compare(pos, *p.q.After)
	if p.q.Reverse {
		return c < 0
	}
	return c > 0
}

// position places rec in the plan's index; ok is false when rec is not in
// it or does not meet the query.
func (p *plan) position(rec *pipeline.Record) (pipeline.Position, bool) {
	pos := pipeline.Position{Hash: rec.Key.PK, Sort: rec.Key.SK, Key: rec.Key}
	if p.x != nil {
		i := slices.IndexFunc(rec.Indexes, func(e pipeline.IndexEntry) bool { return e.Index == p.x.name })
		if i < 0 {
			return pos, false
		}
		pos.Hash, pos.Sort = rec.Indexes[i].Hash, rec.Indexes[i].Sort
	}
	if p.q.HashPrefix {
		if !strings.HasPrefix(pos.Hash, p.q.Hash) {
			return pos, false
		}
	} else if cmp(pos.Hash, p.q.Hash, p.hashType) != 0 {
		return pos, false
	}
	return pos, p.sortMatches(pos.Sort)
}

// scanFn receives each record a scan selects with its raw attributes.
type scanFn func(rec *pipeline.Record, pos pipeline.Position, attrs map[string]types.AttributeValue) (bool, error)

// scan walks the records q selects, in order, skipping expired ones.
func (s *Store) scan(ctx context.Context, q pipeline.Query, fn scanFn) error {
	p, err := s.plan(q)
	if err != nil {
		return err
	}
	if q.HashPrefix {
		return s.prefixScan(ctx, p, fn)
	}
	return s.query(ctx, p, fn)
}

// keyCondition is the query's sort condition in DynamoDB's terms. DynamoDB
// holds no empty string key, so conditions on "" are settled here: none
// (nothing can match) or all.
func (p *plan) keyCondition() (c pipeline.SortCond, none bool) {
	c = p.q.Sort
	if p.sortAttr == "" {
		return pipeline.SortCond{}, false // hash-only index: checked on each record
	}
	if c.Op == pipeline.SortBetween && cmp(c.Values[0], c.Values[1], p.sortType) > 0 {
		return c, true
	}
	if p.sortType == types.ScalarAttributeTypeN || c.Op == pipeline.SortAll {
		return c, false
	}
	switch {
	case c.Op == pipeline.SortBegins && c.Values[0] == "":
		return pipeline.SortCond{}, false
	case c.Op == pipeline.SortBetween && c.Values[1] == "":
		return c, true
	case c.Op == pipeline.SortBetween && c.Values[0] == "":
		return pipeline.SortCond{Op: pipeline.SortLE, Values: c.Values[1:]}, false
	case c.Op == pipeline.SortBetween:
		return c, false
	case c.Values[0] != "":
		return c, false
	case c.Op == pipeline.SortGE || c.Op == pipeline.SortGT:
		return pipeline.SortCond{}, false
	}
	return c, true // = < <= ""
}

// query walks one hash value with Query, on the table or an index.
func (s *Store) query(ctx context.Context, p *plan, fn scanFn) error {
	q := p.q
	if q.Hash == "" {
		return nil
	}
	cond, none := p.keyCondition()
	if none {
		return nil
	}
	names := map[string]string{"#h": p.hashAttr}
	values := map[string]types.AttributeValue{":h": keyValue(p.hashType, q.Hash)}
	expr := "#h = :h"
	if cond.Op != pipeline.SortAll {
		names["#s"] = p.sortAttr
		v := func(i int) types.AttributeValue { return keyValue(p.sortType, cond.Values[i]) }
		switch cond.Op {
		case pipeline.SortBegins:
			expr += " AND begins_with(#s, :s0)"
		case pipeline.SortBetween:
			expr += " AND #s BETWEEN :s0 AND :s1"
			values[":s1"] = v(1)
		default:
			expr += " AND #s " + string(cond.Op) + " :s0"
		}
		values[":s0"] = v(0)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.cfg.Table),
		KeyConditionExpression:    aws.String(expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ScanIndexForward:          aws.Bool(!q.Reverse),
		ConsistentRead:            aws.Bool(s.cfg.ConsistentRead && (p.x == nil || p.x.local)),
	}
	what := fmt.Sprintf("hash %q", pipeline.Truncate(q.Hash, 200))
	if p.x != nil {
		in.IndexName = aws.String(p.x.name)
		what = fmt.Sprintf("index %q %s", p.x.name, what)
	}
	var start map[string]types.AttributeValue
	if q.After != nil {
		var skipAll, ok bool
		if start, skipAll, ok = p.startKey(s.l); skipAll {
			return nil
		} else if !ok {
			start = nil
		}
	}
	if p.x == nil {
		// Primary keys are unique: DynamoDB's order is the key order.
		in.ExclusiveStartKey = start
		return s.pages(ctx, in, what, func(attrs map[string]types.AttributeValue) (bool, error) {
			return s.visit(p, attrs, fn)
		})
	}
	// An index may hold several items with the same hash and sort value;
	// DynamoDB returns them in an order of its own, the contract in primary
	// key order. Each group of equal keys is read whole and sorted.
	g := &grouper{s: s, p: p, fn: fn}
	if start != nil && p.sortAttr != "" {
		// The group at After is read whole (a Query on its sort value);
		// the walk then resumes after After in DynamoDB's order, without
		// that group.
		a := q.After
		if p.sortMatches(a.Sort) {
			eq := *in
			eq.KeyConditionExpression = aws.String("#h = :h AND #s = :a")
			eq.ExpressionAttributeNames = map[string]string{"#h": p.hashAttr, "#s": p.sortAttr}
			eq.ExpressionAttributeValues = map[string]types.AttributeValue{":h": values[":h"], ":a": keyValue(p.sortType, a.Sort)}
			if err := s.pages(ctx, &eq, what, g.add); err != nil || g.stopped {
				return err
			}
			if more, err := g.flush(); err != nil || !more {
				return err
			}
		}
		g.skip = &pipeline.Position{Hash: a.Hash, Sort: a.Sort}
		in.ExclusiveStartKey = start
	}
	if err := s.pages(ctx, in, what, g.add); err != nil || g.stopped {
		return err
	}
	_, err := g.flush()
	return err
}

// pages runs a Query page after page, handing each item to fn until it
// returns false.
func (s *Store) pages(ctx context.Context, in *dynamodb.QueryInput, what string, fn func(map[string]types.AttributeValue) (bool, error)) error {
	p := s.planOf(in)
	for page := 0; ; page++ {
		if page < len(pageLimits) {
			in.Limit = aws.Int32(pageLimits[page])
		} else {
			in.Limit = nil
		}
		var out *dynamodb.QueryOutput
		err := s.call(ctx, "query", what, func(ctx context.Context) (err error) {
			out, err = s.api.Query(ctx, in)
			return err
		})
		if err != nil {
			return err
		}
		items, err := s.follow(ctx, p, out.Items)
		if err != nil {
			return err
		}
		for _, attrs := range items {
			more, err := fn(attrs)
			if err != nil || !more {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// planOf is the index a query input reads, for follow.
func (s *Store) planOf(in *dynamodb.QueryInput) *plan {
	if in.IndexName == nil {
		return &plan{}
	}
	return &plan{x: s.l.byName[aws.ToString(in.IndexName)]}
}

// grouper gathers the items of an index walk with equal hash and sort
// values and passes each group on in primary key order.
type grouper struct {
	s       *Store
	p       *plan
	fn      scanFn
	group   []hit
	skip    *pipeline.Position // a group already passed on
	stopped bool
}

type hit struct {
	rec   *pipeline.Record
	pos   pipeline.Position
	attrs map[string]types.AttributeValue
}

func (g *grouper) add(attrs map[string]types.AttributeValue) (bool, error) {
	rec, err := g.s.l.fromAttrs(attrs)
	if err != nil {
		return false, err
	}
	if g.s.expired(rec) {
		return true, nil
	}
	pos, ok := g.p.position(rec)
	if !ok {
		return true, nil
	}
	if g.skip != nil && g.p.sameGroup(pos, *g.skip) {
		return true, nil
	}
	if len(g.group) > 0 && !g.p.sameGroup(pos, g.group[0].pos) {
		if more, err := g.flush(); err != nil || !more {
			return false, err
		}
	}
	g.group = append(g.group, hit{rec, pos, attrs})
	return true, nil
}

// flush passes the gathered group on, sorted, from after q.After.
func (g *grouper) flush() (bool, error) {
	group := g.group
	g.group = nil
	slices.SortFunc(group, func(a, b hit) int {
		if g.p.q.Reverse {
			return g.p.compare(b.pos, a.pos)
		}
		return g.p.compare(a.pos, b.pos)
	})
	for _, h := range group {
		if !g.p.after(h.pos) {
			continue
		}
		more, err := g.fn(h.rec, h.pos, h.attrs)
		if err != nil || !more {
			g.stopped = true
			return false, err
		}
	}
	return true, nil
}

func (p *plan) sameGroup(a, b pipeline.Position) bool {
	return cmp(a.Hash, b.Hash, p.hashType) == 0 && cmp(a.Sort, b.Sort, p.sortType) == 0
}

// visit reads one item of a walk and hands it to fn when it is live, in
// the index, meets the query and comes after q.After.
func (s *Store) visit(p *plan, attrs map[string]types.AttributeValue, fn scanFn) (bool, error) {
	rec, err := s.l.fromAttrs(attrs)
	if err != nil {
		return false, err
	}
	if s.expired(rec) {
		return true, nil
	}
	pos, ok := p.position(rec)
	if !ok || !p.after(pos) {
		return true, nil
	}
	return fn(rec, pos, attrs)
}

// startKey is q.After as an ExclusiveStartKey of the query's hash value.
// skipAll says nothing comes after it; ok is false when After cannot be a
// start key (another hash value before the query's, an empty part): the
// walk then starts at the beginning and visit skips up to After.
func (p *plan) startKey(l *layout) (start map[string]types.AttributeValue, skipAll, ok bool) {
	a := p.q.After
	switch c := cmp(a.Hash, p.q.Hash, p.hashType); {
	case c != 0 && (c < 0) != p.q.Reverse:
		return nil, false, false // After is before the whole walk
	case c != 0:
		return nil, true, false
	}
	if a.Key.PK == "" || a.Key.SK == "" {
		return nil, false, false
	}
	start = l.keyAttrs(a.Key)
	if p.x != nil {
		if p.x.sort != "" {
			if a.Sort == "" {
				return nil, false, false
			}
			start[p.x.sort] = keyValue(p.x.sortType, a.Sort)
		}
		start[p.x.hash] = keyValue(p.x.hashType, a.Hash)
	}
	return start, false, true
}

// prefixScan walks every hash value starting with q.Hash: a Scan of the
// table (or index) filtered by begins_with, sorted here into key order.
// It reads the whole table or index each time.
func (s *Store) prefixScan(ctx context.Context, p *plan, fn scanFn) error {
	q := p.q
	in := &dynamodb.ScanInput{
		TableName:      aws.String(s.cfg.Table),
		ConsistentRead: aws.Bool(s.cfg.ConsistentRead && (p.x == nil || p.x.local)),
	}
	if p.x != nil {
		in.IndexName = aws.String(p.x.name)
	}
	if q.Hash != "" {
		in.FilterExpression = aws.String("begins_with(#h, :p)")
		in.ExpressionAttributeNames = map[string]string{"#h": p.hashAttr}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: q.Hash}}
	}
	what := fmt.Sprintf("hash prefix %q", pipeline.Truncate(q.Hash, 200))
	if p.x != nil {
		what = fmt.Sprintf("index %q %s", p.x.name, what)
	}
	var hits []hit
	for {
		var out *dynamodb.ScanOutput
		err := s.call(ctx, "scan", what, func(ctx context.Context) (err error) {
			out, err = s.api.Scan(ctx, in)
			return err
		})
		if err != nil {
			return err
		}
		items, err := s.follow(ctx, p, out.Items)
		if err != nil {
			return err
		}
		for _, attrs := range items {
			_, err := s.visit(p, attrs, func(rec *pipeline.Record, pos pipeline.Position, attrs map[string]types.AttributeValue) (bool, error) {
				hits = append(hits, hit{rec, pos, attrs})
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if q.Reverse {
			return p.compare(b.pos, a.pos)
		}
		return p.compare(a.pos, b.pos)
	})
	for _, h := range hits {
		if err := ctx.Err(); err != nil {
			return err
		}
		more, err := fn(h.rec, h.pos, h.attrs)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// follow replaces the rows of an index that does not project every
// attribute with the items themselves, read with BatchGetItem (consistent
// when configured). A row whose item is gone is dropped; visit drops one
// whose item has left the index since.
func (s *Store) follow(ctx context.Context, p *plan, rows []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	if p.x == nil || p.x.projection == types.ProjectionTypeAll || p.x.projection == "" || len(rows) == 0 {
		return rows, nil
	}
	full := make(map[pipeline.Key]map[string]types.AttributeValue, len(rows))
	keys := make([]pipeline.Key, 0, len(rows))
	for _, r := range rows {
		pk, _ := r[s.l.hash].(*types.AttributeValueMemberS)
		sk, _ := r[s.l.sort].(*types.AttributeValueMemberS)
		if pk == nil || sk == nil {
			continue
		}
		keys = append(keys, pipeline.Key{PK: pk.Value, SK: sk.Value})
	}
	for chunk := range slices.Chunk(keys, batchGetMax) {
		if err := s.batchGet(ctx, chunk, full); err != nil {
			return nil, err
		}
	}
	out := make([]map[string]types.AttributeValue, 0, len(keys))
	for _, k := range keys {
		if item, ok := full[k]; ok {
			out = append(out, item)
		}
	}
	return out, nil
}

// batchGet reads keys into into, retrying UnprocessedKeys with backoff.
func (s *Store) batchGet(ctx context.Context, keys []pipeline.Key, into map[pipeline.Key]map[string]types.AttributeValue) error {
	req := types.KeysAndAttributes{ConsistentRead: aws.Bool(s.cfg.ConsistentRead)}
	for _, k := range keys {
		req.Keys = append(req.Keys, s.l.keyAttrs(k))
	}
	pending := map[string]types.KeysAndAttributes{s.cfg.Table: req}
	what := fmt.Sprintf("%d keys from %s", len(keys), keys[0])
	return s.call(ctx, "batch get", what, func(ctx context.Context) error {
		out, err := s.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
		if err != nil {
			return err
		}
		for _, item := range out.Responses[s.cfg.Table] {
			pk, _ := item[s.l.hash].(*types.AttributeValueMemberS)
			sk, _ := item[s.l.sort].(*types.AttributeValueMemberS)
			if pk != nil && sk != nil {
				into[pipeline.Key{PK: pk.Value, SK: sk.Value}] = item
			}
		}
		if left := out.UnprocessedKeys[s.cfg.Table]; len(left.Keys) > 0 {
			pending = out.UnprocessedKeys
			return errUnprocessed
		}
		return nil
	})
}
