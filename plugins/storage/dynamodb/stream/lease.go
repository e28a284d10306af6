package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The source's bookkeeping items live in the table itself, in one
// partition: pk "~stream", sk "lease#<shardId>" and
// "checkpoint#<shardId>". Their type attribute is "~stream", an internal
// model, and their records in the stream are skipped (pk "~…").
const (
	bookkeepingPK    = "~stream"
	bookkeepingType  = "~stream"
	leasePrefix      = "lease#"
	checkpointPrefix = "checkpoint#"
)

// Attributes of the lease and checkpoint items.
const (
	attrOwner   = "owner"   // lease: the worker holding it ("" when released)
	attrVer     = "ver"     // lease: bumped by every take, renewal and release
	attrExpires = "expires" // lease: epoch ms after which it is expired (owner's clock)
	attrStream  = "stream"  // both: the stream ARN
	attrShard   = "shard"   // both: the shard id
	attrSeq     = "seq"     // checkpoint: sequence number of the last settled record
	attrPos     = "pos"     // checkpoint: seq zero-padded, so that it compares as text
	attrEnded   = "ended"   // checkpoint: the shard is closed and read and settled to its end
	attrAt      = "at"      // both: epoch ms of the write
)

// errLeaseLost says a conditional write found the lease no longer ours.
var errLeaseLost = errors.New("the shard's lease is held by another worker")

type leaseItem struct {
	owner   string
	ver     int64
	expires int64
	stream  string
	at      int64
}

type checkpointItem struct {
	seq    string
	ended  bool
	stream string
	at     int64
}

func sv(s string) ddb.AttributeValue { return &ddb.AttributeValueMemberS{Value: s} }
func nv(n int64) ddb.AttributeValue {
	return &ddb.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func (s *Source) itemKey(sk string) map[string]ddb.AttributeValue {
	return map[string]ddb.AttributeValue{s.cfg.HashKey: sv(bookkeepingPK), s.cfg.SortKey: sv(sk)}
}

// padSeq pads a sequence number (decimal digits) to a fixed width so that
// text order is number order.
func padSeq(seq string) string {
	const width = 64
	if len(seq) >= width || strings.Trim(seq, "0123456789") != "" {
		return seq
	}
	return strings.Repeat("0", width-len(seq)) + seq
}

// loadBookkeeping reads every lease, checkpoint and worker heartbeat of the table (one
// consistent query of the "~stream" partition, paged).
func (s *Source) loadBookkeeping(ctx context.Context) (map[string]leaseItem, map[string]checkpointItem, map[string]workerItem, error) {
	leases, ckpts, workers := map[string]leaseItem{}, map[string]checkpointItem{}, map[string]workerItem{}
	var start map[string]ddb.AttributeValue
	for {
		var out *dynamodb.QueryOutput
		err := s.call(ctx, func(ctx context.Context) error {
			var err error
			out, err = s.cfg.Client.Query(ctx, &dynamodb.QueryInput{
				TableName:                 aws.String(s.cfg.Table),
				KeyConditionExpression:    aws.String("#pk = :pk"),
				ExpressionAttributeNames:  map[string]string{"#pk": s.cfg.HashKey},
				ExpressionAttributeValues: map[string]ddb.AttributeValue{":pk": sv(bookkeepingPK)},
				ConsistentRead:            aws.Bool(true),
				ExclusiveStartKey:         start,
			})
			return err
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("dynamodb table %q: read stream leases and checkpoints: %w", s.cfg.Table, err)
		}
		for _, it := range out.Items {
			sk, _ := it[s.cfg.SortKey].(*ddb.AttributeValueMemberS)
			if sk == nil {
				continue
			}
			switch {
			case strings.HasPrefix(sk.Value, leasePrefix):
				leases[strings.TrimPrefix(sk.Value, leasePrefix)] = leaseItem{owner: str(it, attrOwner),
					ver: num(it, attrVer), expires: num(it, attrExpires), stream: str(it, attrStream), at: num(it, attrAt)}
			case strings.HasPrefix(sk.Value, checkpointPrefix):
				ended, _ := it[attrEnded].(*ddb.AttributeValueMemberBOOL)
				ckpts[strings.TrimPrefix(sk.Value, checkpointPrefix)] = checkpointItem{seq: str(it, attrSeq),
					ended: ended != nil && ended.Value, stream: str(it, attrStream), at: num(it, attrAt)}
			case strings.HasPrefix(sk.Value, workerPrefix):
				workers[strings.TrimPrefix(sk.Value, workerPrefix)] = workerItem{expires: num(it, attrExpires), at: num(it, attrAt)}
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return leases, ckpts, workers, nil
		}
		start = out.LastEvaluatedKey
	}
}

// readCheckpoint reads shard id's checkpoint (consistently); ok is false
// when it has none, or one of another stream.
func (s *Source) readCheckpoint(ctx context.Context, id string) (checkpointItem, bool, error) {
	var out *dynamodb.GetItemOutput
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.cfg.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.cfg.Table),
			Key: s.itemKey(checkpointPrefix + id), ConsistentRead: aws.Bool(true)})
		return err
	})
	if err != nil {
		return checkpointItem{}, false, fmt.Errorf("dynamodb table %q, stream shard %s: read checkpoint: %w", s.cfg.Table, id, err)
	}
	if len(out.Item) == 0 {
		return checkpointItem{}, false, nil
	}
	ended, _ := out.Item[attrEnded].(*ddb.AttributeValueMemberBOOL)
	c := checkpointItem{seq: str(out.Item, attrSeq), ended: ended != nil && ended.Value, stream: str(out.Item, attrStream)}
	if c.stream != "" && c.stream != s.streamARN() {
		return checkpointItem{}, false, nil
	}
	return c, true, nil
}

func str(it map[string]ddb.AttributeValue, name string) string {
	if v, ok := it[name].(*ddb.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func num(it map[string]ddb.AttributeValue, name string) int64 {
	if v, ok := it[name].(*ddb.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

// conditionFailed turns a failed condition into errLeaseLost.
func conditionFailed(err error) bool { return classify(err) == kindCondition }

// takeLease takes shard id's lease: it creates the item when there is none
// (cur nil), else writes itself as owner if the lease is still at the
// version seen (free, or expired). It returns the version now held.
func (s *Source) takeLease(ctx context.Context, id string, cur *leaseItem) (int64, error) {
	now := time.Now()
	var err error
	ver := int64(1)
	if cur == nil {
		item := s.itemKey(leasePrefix + id)
		item[s.cfg.TypeField] = sv(bookkeepingType)
		item[attrOwner], item[attrVer], item[attrExpires] = sv(s.owner), nv(ver), nv(now.Add(s.cfg.LeaseDuration).UnixMilli())
		item[attrStream], item[attrShard], item[attrAt] = sv(s.arn), sv(id), nv(now.UnixMilli())
		err = s.call(ctx, func(ctx context.Context) error {
			_, err := s.cfg.Client.PutItem(ctx, &dynamodb.PutItemInput{
				TableName: aws.String(s.cfg.Table), Item: item,
				ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
				ExpressionAttributeNames: map[string]string{"#pk": s.cfg.HashKey},
			})
			return err
		})
	} else {
		ver = cur.ver + 1
		err = s.call(ctx, func(ctx context.Context) error {
			_, err := s.cfg.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(s.cfg.Table), Key: s.itemKey(leasePrefix + id),
				UpdateExpression:    aws.String("SET #o = :me, #v = :nv, #e = :exp, #st = :st, #sh = :sh, #at = :at"),
				ConditionExpression: aws.String("#v = :seen AND #o = :seenOwner"),
				ExpressionAttributeNames: map[string]string{"#o": attrOwner, "#v": attrVer, "#e": attrExpires,
					"#st": attrStream, "#sh": attrShard, "#at": attrAt},
				ExpressionAttributeValues: map[string]ddb.AttributeValue{":me": sv(s.owner), ":nv": nv(ver),
					":exp": nv(now.Add(s.cfg.LeaseDuration).UnixMilli()), ":st": sv(s.arn), ":sh": sv(id),
					":at": nv(now.UnixMilli()), ":seen": nv(cur.ver), ":seenOwner": sv(cur.owner)},
			})
			return err
		})
	}
	if conditionFailed(err) {
		return 0, fmt.Errorf("dynamodb table %q, stream shard %s: take lease: %w", s.cfg.Table, id, errLeaseLost)
	}
	if err != nil {
		return 0, fmt.Errorf("dynamodb table %q, stream shard %s: take lease: %w", s.cfg.Table, id, err)
	}
	return ver, nil
}

// renewLease extends a held lease; it fails with errLeaseLost when the
// lease is no longer ours at version ver.
func (s *Source) renewLease(ctx context.Context, id string, ver int64) (int64, error) {
	now := time.Now()
	err := s.call(ctx, func(ctx context.Context) error {
		_, err := s.cfg.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.cfg.Table), Key: s.itemKey(leasePrefix + id),
			UpdateExpression:         aws.String("SET #v = :nv, #e = :exp, #at = :at"),
			ConditionExpression:      aws.String("#o = :me AND #v = :v"),
			ExpressionAttributeNames: map[string]string{"#o": attrOwner, "#v": attrVer, "#e": attrExpires, "#at": attrAt},
			ExpressionAttributeValues: map[string]ddb.AttributeValue{":me": sv(s.owner), ":v": nv(ver), ":nv": nv(ver + 1),
				":exp": nv(now.Add(s.cfg.LeaseDuration).UnixMilli()), ":at": nv(now.UnixMilli())},
		})
		return err
	})
	if conditionFailed(err) {
		return 0, fmt.Errorf("dynamodb table %q, stream shard %s: renew lease: %w", s.cfg.Table, id, errLeaseLost)
	}
	if err != nil {
		return 0, fmt.Errorf("dynamodb table %q, stream shard %s: renew lease: %w", s.cfg.Table, id, err)
	}
	return ver + 1, nil
}

// releaseLease gives a held lease up (owner ""), so another worker can
// take it at once.
func (s *Source) releaseLease(ctx context.Context, id string, ver int64) error {
	err := s.call(ctx, func(ctx context.Context) error {
		_, err := s.cfg.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.cfg.Table), Key: s.itemKey(leasePrefix + id),
			UpdateExpression:         aws.String("SET #o = :none, #v = :nv, #e = :zero, #at = :at"),
			ConditionExpression:      aws.String("#o = :me AND #v = :v"),
			ExpressionAttributeNames: map[string]string{"#o": attrOwner, "#v": attrVer, "#e": attrExpires, "#at": attrAt},
			ExpressionAttributeValues: map[string]ddb.AttributeValue{":me": sv(s.owner), ":v": nv(ver), ":nv": nv(ver + 1),
				":none": sv(""), ":zero": nv(0), ":at": nv(time.Now().UnixMilli())},
		})
		return err
	})
	if conditionFailed(err) {
		return nil // not ours any more: nothing to release
	}
	if err != nil {
		return fmt.Errorf("dynamodb table %q, stream shard %s: release lease: %w", s.cfg.Table, id, err)
	}
	return nil
}

// writeCheckpoint records that shard id is settled up to sequence number
// seq (and, with ended, to its end), in one transaction with a check that
// this worker still holds the shard's lease; a checkpoint never moves
// back. It fails with errLeaseLost when either condition fails.
func (s *Source) writeCheckpoint(ctx context.Context, id, seq string, ended bool) error {
	item := s.itemKey(checkpointPrefix + id)
	item[s.cfg.TypeField] = sv(bookkeepingType)
	item[attrSeq], item[attrPos], item[attrEnded] = sv(seq), sv(padSeq(seq)), &ddb.AttributeValueMemberBOOL{Value: ended}
	item[attrStream], item[attrShard], item[attrOwner], item[attrAt] = sv(s.arn), sv(id), sv(s.owner), nv(time.Now().UnixMilli())
	err := s.call(ctx, func(ctx context.Context) error {
		_, err := s.cfg.Client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddb.TransactWriteItem{
			{ConditionCheck: &ddb.ConditionCheck{
				TableName: aws.String(s.cfg.Table), Key: s.itemKey(leasePrefix + id),
				ConditionExpression:       aws.String("#o = :me"),
				ExpressionAttributeNames:  map[string]string{"#o": attrOwner},
				ExpressionAttributeValues: map[string]ddb.AttributeValue{":me": sv(s.owner)},
			}},
			{Put: &ddb.Put{
				TableName: aws.String(s.cfg.Table), Item: item,
				ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #pos <= :pos"),
				ExpressionAttributeNames:  map[string]string{"#pk": s.cfg.HashKey, "#pos": attrPos},
				ExpressionAttributeValues: map[string]ddb.AttributeValue{":pos": sv(padSeq(seq))},
			}},
		}})
		return err
	})
	if conditionFailed(err) {
		return fmt.Errorf("dynamodb table %q, stream shard %s: checkpoint %s: %w", s.cfg.Table, id, seq, errLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("dynamodb table %q, stream shard %s: checkpoint %s: %w", s.cfg.Table, id, seq, err)
	}
	s.m.checkpoints.Add(1)
	return nil
}

// deleteBookkeeping deletes the lease and checkpoint items of a shard the
// stream no longer lists (its records are past the retention). A lease is
// deleted only while it is at the version seen free or expired.
func (s *Source) deleteBookkeeping(ctx context.Context, id string, lease *leaseItem, ckpt bool) error {
	if lease != nil {
		err := s.call(ctx, func(ctx context.Context) error {
			_, err := s.cfg.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName: aws.String(s.cfg.Table), Key: s.itemKey(leasePrefix + id),
				ConditionExpression:       aws.String("#v = :v"),
				ExpressionAttributeNames:  map[string]string{"#v": attrVer},
				ExpressionAttributeValues: map[string]ddb.AttributeValue{":v": nv(lease.ver)},
			})
			return err
		})
		if err != nil && !conditionFailed(err) {
			return fmt.Errorf("dynamodb table %q, stream shard %s: delete old lease: %w", s.cfg.Table, id, err)
		}
	}
	if ckpt {
		err := s.call(ctx, func(ctx context.Context) error {
			_, err := s.cfg.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName: aws.String(s.cfg.Table), Key: s.itemKey(checkpointPrefix + id),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("dynamodb table %q, stream shard %s: delete old checkpoint: %w", s.cfg.Table, id, err)
		}
	}
	return nil
}
