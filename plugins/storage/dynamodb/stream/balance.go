package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Workers share the shards evenly: each writes a heartbeat item
// {pk "~stream", sk "worker#<owner>", expires, at} at every refresh, and
// counts the workers whose heartbeat is alive. A worker takes no more
// than its fair share, ceil(open shards / workers), and one holding more
// hands a shard over (checkpoint, release) per refresh, so a worker
// started later gets its part. Balance is best effort: the leases, not
// the heartbeats, keep two readers off one shard.
const workerPrefix = "worker#"

// workerItem is a worker's heartbeat.
type workerItem struct {
	expires int64
	at      int64
}

// errHandedOver is why a shard was let go to balance the workers.
var errHandedOver = errors.New("handed over to balance the shards among workers")

// heartbeat writes this worker's heartbeat item.
func (s *Source) heartbeat(ctx context.Context, now time.Time) error {
	expires := now.Add(2 * s.cfg.RefreshInterval).UnixMilli()
	item := s.itemKey(workerPrefix + s.owner)
	item[s.cfg.TypeField] = sv(bookkeepingType)
	item[attrExpires] = nv(expires)
	item[attrAt] = nv(now.UnixMilli())
	err := s.call(ctx, func(ctx context.Context) error {
		_, err := s.cfg.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.cfg.Table), Item: item})
		return err
	})
	if err != nil {
		return fmt.Errorf("dynamodb table %q: stream worker heartbeat: %w", s.cfg.Table, err)
	}
	return nil
}

// forgetWorker deletes this worker's heartbeat (Close), or another's
// that has been dead for long (at unchanged).
func (s *Source) forgetWorker(ctx context.Context, owner string, at int64) error {
	in := &dynamodb.DeleteItemInput{TableName: aws.String(s.cfg.Table), Key: s.itemKey(workerPrefix + owner)}
	if owner != s.owner {
		in.ConditionExpression = aws.String("#at = :at")
		in.ExpressionAttributeNames = map[string]string{"#at": attrAt}
		in.ExpressionAttributeValues = map[string]ddb.AttributeValue{":at": nv(at)}
	}
	err := s.call(ctx, func(ctx context.Context) error {
		_, err := s.cfg.Client.DeleteItem(ctx, in)
		return err
	})
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("dynamodb table %q: forget stream worker %s: %w", s.cfg.Table, owner, err)
	}
	return nil
}

// liveWorkers counts the workers alive at now, this one included: those
// whose heartbeat (two refresh intervals long) is due by now less one
// more refresh interval, so a dead worker stops counting about when its
// leases can be taken over. It lists the heartbeats dead for more than
// ten lease durations.
func (s *Source) liveWorkers(workers map[string]workerItem, now time.Time) (live int, dead []string) {
	live = 1
	grace := s.cfg.RefreshInterval.Milliseconds()
	for owner, w := range workers {
		switch {
		case owner == s.owner:
		case now.UnixMilli() <= w.expires+grace:
			live++
		case now.UnixMilli() > w.expires+10*s.cfg.LeaseDuration.Milliseconds():
			dead = append(dead, owner)
		}
	}
	slices.Sort(dead)
	return live, dead
}

// fairShare is how many of open shards one of live workers reads.
func fairShare(open, live int) int {
	if live < 1 {
		live = 1
	}
	return (open + live - 1) / live
}

// balance hands over one held shard when this worker holds more than
// fair: its settled position is checkpointed, its reader stops, its
// lease is released and it is not taken again for two lease durations.
// Changes read from it and not yet acknowledged are read again by the
// next holder (at least once, as after any takeover).
func (s *Source) balance(ctx context.Context, fair int) error {
	s.mu.Lock()
	if len(s.shards) <= fair {
		s.mu.Unlock()
		return nil
	}
	ids := make([]string, 0, len(s.shards))
	for id := range s.shards {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	sh := s.shards[ids[len(ids)-1]]
	s.mu.Unlock()
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	if s.shards[sh.id] != sh {
		s.mu.Unlock()
		return nil
	}
	s.cooldown[sh.id] = time.Now().Add(2 * s.cfg.LeaseDuration)
	ver := sh.ver
	s.mu.Unlock()
	s.drop(sh)
	s.m.leasesHandedOver.Add(1)
	s.log.Info("dynamodb stream shard handed over", "shard", sh.id, "why", errHandedOver, "fair_share", fair)
	return s.releaseLease(ctx, sh.id, ver)
}
