package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/iotod/iotod/pipeline"
)

// maxRecords is the most records one GetRecords call returns.
const maxRecords = 1000

// staleAfter is when the items of a shard of another stream are deleted:
// twice the stream's 24 hour retention.
const staleAfter = 48 * time.Hour

// describeTable checks the table and returns its latest stream's ARN.
func (s *Source) describeTable(ctx context.Context) (string, error) {
	var out *dynamodb.DescribeTableOutput
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.cfg.Client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.cfg.Table)})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("dynamodb table %q: describe: %w", s.cfg.Table, err)
	}
	t := out.Table
	if t == nil {
		return "", fmt.Errorf("dynamodb table %q: describe: no table in the answer", s.cfg.Table)
	}
	spec := t.StreamSpecification
	if spec == nil || !aws.ToBool(spec.StreamEnabled) || aws.ToString(t.LatestStreamArn) == "" {
		return "", pipeline.Permanent(fmt.Errorf("%w: dynamodb table %q has no stream: enable DynamoDB Streams on it with the view type NEW_AND_OLD_IMAGES",
			pipeline.ErrInvalid, s.cfg.Table))
	}
	if spec.StreamViewType != ddb.StreamViewTypeNewAndOldImages {
		return "", pipeline.Permanent(fmt.Errorf("%w: dynamodb table %q streams %s: iotod needs NEW_AND_OLD_IMAGES (a stream's view type cannot be changed: disable the stream and enable it again with NEW_AND_OLD_IMAGES)",
			pipeline.ErrInvalid, s.cfg.Table, spec.StreamViewType))
	}
	var hash, sort string
	for _, k := range t.KeySchema {
		switch k.KeyType {
		case ddb.KeyTypeHash:
			hash = aws.ToString(k.AttributeName)
		case ddb.KeyTypeRange:
			sort = aws.ToString(k.AttributeName)
		}
	}
	if hash != s.cfg.HashKey || sort != s.cfg.SortKey {
		return "", pipeline.Permanent(fmt.Errorf("%w: dynamodb table %q has the key (%q, %q), not (%q, %q)",
			pipeline.ErrInvalid, s.cfg.Table, hash, sort, s.cfg.HashKey, s.cfg.SortKey))
	}
	return aws.ToString(t.LatestStreamArn), nil
}

func (s *Source) streamARN() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arn
}

// listShards lists every shard of the stream (DescribeStream, paged).
func (s *Source) listShards(ctx context.Context, arn string) ([]types.Shard, error) {
	var shards []types.Shard
	var start *string
	for {
		var out *dynamodbstreams.DescribeStreamOutput
		err := s.call(ctx, func(ctx context.Context) error {
			var err error
			out, err = s.cfg.Streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn), ExclusiveStartShardId: start})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("dynamodb stream %s (table %q): describe: %w", arn, s.cfg.Table, err)
		}
		if out.StreamDescription == nil {
			return nil, fmt.Errorf("dynamodb stream %s (table %q): describe: no description in the answer", arn, s.cfg.Table)
		}
		shards = append(shards, out.StreamDescription.Shards...)
		start = out.StreamDescription.LastEvaluatedShardId
		if aws.ToString(start) == "" {
			return shards, nil
		}
	}
}

// refreshLoop lists the shards, takes the free and expired leases of the
// shards that are ready, and writes checkpoints a trim could not, every
// RefreshInterval or when asked.
func (s *Source) refreshLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for round := 1; ; round++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		if err := s.refresh(ctx, round%12 == 0); err != nil {
			s.fail(err)
		} else if s.flush(ctx) == nil {
			s.ok()
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		d := s.cfg.RefreshInterval
		t.Reset(d - d/5 + rand.N(2*d/5+1)) // ±20%, so workers do not refresh in step
	}
}

// refresh is one round of refreshLoop. With describe, the table is
// described again first (its stream may have been replaced).
func (s *Source) refresh(ctx context.Context, describe bool) error {
	arn := s.streamARN()
	if describe {
		if a, err := s.describeTable(ctx); err == nil {
			arn = a
		} else {
			s.fail(err)
		}
	}
	shards, err := s.listShards(ctx, arn)
	if classify(err) == kindPermanent && !describe {
		if a, derr := s.describeTable(ctx); derr == nil && a != arn {
			arn = a
			shards, err = s.listShards(ctx, arn)
		}
	}
	if err != nil {
		return err
	}
	if arn != s.streamARN() {
		s.log.Info("dynamodb stream replaced", "stream", arn)
		s.mu.Lock()
		s.arn = arn
		s.mu.Unlock()
	}
	leases, ckpts, workers, err := s.loadBookkeeping(ctx)
	if err != nil {
		return err
	}
	if err := s.heartbeat(ctx, time.Now()); err != nil {
		return err
	}
	live, dead := s.liveWorkers(workers, time.Now())
	listed := make(map[string]bool, len(shards))
	for _, sh := range shards {
		listed[aws.ToString(sh.ShardId)] = true
	}
	type candidate struct {
		id, parent string
		lease      *leaseItem
	}
	var cands []candidate
	var gone []string
	now := time.Now()
	s.mu.Lock()
	for id, c := range ckpts {
		if c.ended {
			s.done[id] = true
		}
	}
	for id := range s.seen {
		if _, ok := leases[id]; !ok {
			delete(s.seen, id)
		}
	}
	for id, until := range s.cooldown {
		if now.After(until) {
			delete(s.cooldown, id)
		}
	}
	for _, sh := range shards {
		id, parent := aws.ToString(sh.ShardId), aws.ToString(sh.ParentShardId)
		if id == "" || s.done[id] || s.shards[id] != nil || !s.cooldown[id].IsZero() {
			continue
		}
		if parent != "" && listed[parent] && !s.done[parent] && !s.endedHere[parent] {
			continue // a child starts after its parent is read to its end
		}
		c := candidate{id: id, parent: parent}
		if l, ok := leases[id]; ok {
			if !s.free(id, l, now) {
				continue
			}
			c.lease = &l
		}
		cands = append(cands, c)
	}
	// A shard's items are old when the stream no longer lists it, or, for
	// another stream's (the table's stream was replaced, and a worker
	// that has not seen it yet may still read it), after two retentions.
	old := func(stream string, at int64) bool {
		return stream == arn || stream == "" || now.UnixMilli()-at > staleAfter.Milliseconds()
	}
	for id, c := range ckpts {
		if !listed[id] && s.shards[id] == nil && old(c.stream, c.at) {
			gone = append(gone, id)
		}
	}
	for id, l := range leases {
		if _, ok := ckpts[id]; !ok && !listed[id] && s.shards[id] == nil && old(l.stream, l.at) && s.free(id, l, now) {
			gone = append(gone, id)
		}
	}
	open := 0
	for _, sh := range shards {
		if id := aws.ToString(sh.ShardId); id != "" && !s.done[id] {
			open++
		}
	}
	fair := fairShare(open, live)
	s.mu.Unlock()

	for _, c := range cands {
		if ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		full := len(s.shards) >= fair
		s.mu.Unlock()
		if full {
			break // the rest is for the other workers
		}
		t0 := time.Now()
		ver, err := s.takeLease(ctx, c.id, c.lease)
		if errors.Is(err, errLeaseLost) {
			continue // another worker was faster
		}
		if err != nil {
			return err
		}
		// The checkpoint is read once the lease is ours: the last owner
		// can no longer move it.
		ck, _, err := s.readCheckpoint(ctx, c.id)
		if err != nil {
			_ = s.releaseLease(ctx, c.id, ver)
			return err
		}
		if ck.ended { // finished by the last owner in the meantime
			s.mu.Lock()
			s.done[c.id] = true
			s.mu.Unlock()
			if err := s.releaseLease(ctx, c.id, ver); err != nil {
				return err
			}
			continue
		}
		s.startShard(ctx, c.id, c.parent, ck.seq, ver, t0)
	}
	if err := s.balance(ctx, fair); err != nil {
		return err
	}
	for i, owner := range dead {
		if i == 5 {
			break
		}
		if err := s.forgetWorker(ctx, owner, workers[owner].at); err != nil {
			return err
		}
	}
	// Forget the items of shards past the stream's retention (a few per
	// round).
	for i, id := range gone {
		if i == 25 {
			break
		}
		var lease *leaseItem
		if l, ok := leases[id]; ok {
			s.mu.Lock()
			free := s.free(id, l, now)
			s.mu.Unlock()
			if !free {
				continue
			}
			lease = &l
		}
		_, hasCkpt := ckpts[id]
		if err := s.deleteBookkeeping(ctx, id, lease, hasCkpt); err != nil {
			return err
		}
		s.mu.Lock()
		delete(s.done, id)
		delete(s.endedHere, id)
		s.mu.Unlock()
	}
	return nil
}

// free reports whether another worker's lease l of shard id may be taken:
// released, or not renewed (its version unchanged) for a lease duration
// as this worker saw it, or expired by its own clock by more than a lease
// duration (a worker that died long ago). s.mu is held.
func (s *Source) free(id string, l leaseItem, now time.Time) bool {
	if l.owner == "" {
		return true
	}
	byClock := l.expires > 0 && now.UnixMilli() > l.expires+s.cfg.LeaseDuration.Milliseconds()
	o, ok := s.seen[id]
	if !ok || o.owner != l.owner || o.ver != l.ver {
		s.seen[id] = observed{owner: l.owner, ver: l.ver, since: now}
		return byClock
	}
	return byClock || now.Sub(o.since) >= s.cfg.LeaseDuration
}

// startShard starts reading a shard whose lease was just taken, after the
// checkpoint (or from the oldest record kept).
func (s *Source) startShard(ctx context.Context, id, parent, after string, ver int64, renewed time.Time) {
	rctx, cancel := context.WithCancel(ctx)
	sh := &shard{id: id, parent: parent, ver: ver, renewed: renewed, cancel: cancel, settled: after, written: after}
	s.mu.Lock()
	sh.inc = s.nextInc
	s.nextInc++
	s.shards[id] = sh
	delete(s.seen, id)
	s.mu.Unlock()
	s.m.leasesTaken.Add(1)
	s.log.Info("dynamodb stream shard lease taken", "shard", id, "after", after, "owner", s.owner)
	s.wg.Add(1)
	go s.readShard(rctx, sh, after)
}

// renewLoop renews the held leases every RenewInterval. A lease that
// another worker took, or that could not be renewed before its deadline,
// is let go.
func (s *Source) renewLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		held := make([]*shard, 0, len(s.shards))
		for _, sh := range s.shards {
			held = append(held, sh)
		}
		s.mu.Unlock()
		for _, sh := range held {
			s.renew(ctx, sh)
		}
	}
}

func (s *Source) renew(ctx context.Context, sh *shard) {
	s.mu.Lock()
	ver, deadline := sh.ver, s.deadline(sh)
	s.mu.Unlock()
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	t0 := time.Now()
	nver, err := s.renewLease(rctx, sh.id, ver)
	switch {
	case err == nil:
		s.mu.Lock()
		if sh.ver == ver {
			sh.ver, sh.renewed = nver, t0
		}
		s.mu.Unlock()
	case errors.Is(err, errLeaseLost):
		s.lose(sh, err)
	case ctx.Err() != nil:
	default:
		s.fail(err)
		s.mu.Lock()
		lapsed := !s.valid(sh, time.Now())
		s.mu.Unlock()
		if lapsed {
			s.lose(sh, fmt.Errorf("lease not renewed in time: %w", err))
		}
	}
}

// readShard reads one shard while its lease is held, until its end.
func (s *Source) readShard(ctx context.Context, sh *shard, after string) {
	defer s.wg.Done()
	var it *string
	for ctx.Err() == nil {
		if it == nil {
			var err error
			it, err = s.iterator(ctx, sh, after)
			if err != nil {
				if s.readFailed(ctx, sh, err) {
					return
				}
				continue
			}
		}
		room := s.waitRoom(ctx)
		if room == 0 {
			return
		}
		limit := int32(min(room, maxRecords))
		s.mu.Lock()
		ok, deadline := s.valid(sh, time.Now()), s.deadline(sh)
		s.mu.Unlock()
		if !ok {
			s.lose(sh, errors.New("lease not renewed in time"))
			return
		}
		// The call ends by the lease's deadline, so this worker never reads
		// a shard another may have taken over.
		gctx, cancel := context.WithDeadline(ctx, deadline)
		var out *dynamodbstreams.GetRecordsOutput
		err := s.call(gctx, func(ctx context.Context) error {
			var err error
			out, err = s.cfg.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(limit)})
			return err
		})
		cancel()
		if err != nil {
			switch errCode(err) {
			case "ExpiredIteratorException":
				it, after = nil, s.resumePoint(sh, after)
				continue
			case "TrimmedDataAccessException":
				s.m.trimmed.Add(1)
				s.log.Warn("dynamodb stream shard position is past the stream's retention: reading from the oldest record kept",
					"shard", sh.id, "after", s.resumePoint(sh, after))
				it, after = nil, ""
				s.mu.Lock()
				sh.lastRead = ""
				s.mu.Unlock()
				continue
			}
			if gctx.Err() != nil && ctx.Err() == nil {
				continue // the lease's deadline: checked at the top
			}
			if s.readFailed(ctx, sh, fmt.Errorf("dynamodb stream %s (table %q), shard %s: get records: %w", s.streamARN(), s.cfg.Table, sh.id, err)) {
				return
			}
			continue
		}
		s.mu.Lock()
		if !s.valid(sh, time.Now()) {
			s.mu.Unlock()
			s.lose(sh, errors.New("lease not renewed in time"))
			return
		}
		added := s.take(sh, out.Records)
		end := out.NextShardIterator == nil
		if end {
			sh.ended = true
			s.endedHere[sh.id] = true
		}
		s.mu.Unlock()
		if added {
			signal(s.notify)
		}
		if end {
			s.log.Debug("dynamodb stream shard read to its end", "shard", sh.id)
			signal(s.wake) // checkpoint its end, start its children
			return
		}
		it = out.NextShardIterator
		if len(out.Records) < int(limit)/2 && !sleep(ctx, s.cfg.PollInterval) {
			return
		}
	}
}

// resumePoint is where a shard's reading resumes: after its last record
// read, else where it started.
func (s *Source) resumePoint(sh *shard, after string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh.lastRead != "" {
		return sh.lastRead
	}
	return after
}

// readFailed handles a failed read of a shard. A permanent failure (the
// stream or shard is gone) lets the shard go for a minute; anything else
// is retried after the poll interval. It reports whether the reader must
// stop.
func (s *Source) readFailed(ctx context.Context, sh *shard, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	s.fail(err)
	if pipeline.IsPermanent(err) {
		s.mu.Lock()
		s.cooldown[sh.id] = time.Now().Add(time.Minute)
		ver := sh.ver
		s.mu.Unlock()
		s.lose(sh, err)
		_ = s.releaseLease(ctx, sh.id, ver)
		return true
	}
	return !sleep(ctx, s.cfg.PollInterval)
}

// iterator returns a shard iterator after the sequence number after, or
// at the oldest record kept when after is empty.
func (s *Source) iterator(ctx context.Context, sh *shard, after string) (*string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(s.streamARN()), ShardId: aws.String(sh.id),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon}
	if after != "" {
		in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(after)
	}
	var out *dynamodbstreams.GetShardIteratorOutput
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.cfg.Streams.GetShardIterator(ctx, in)
		return err
	})
	if errCode(err) == "TrimmedDataAccessException" && after != "" {
		s.m.trimmed.Add(1)
		s.log.Warn("dynamodb stream shard checkpoint is past the stream's retention: reading from the oldest record kept",
			"shard", sh.id, "after", after)
		return s.iterator(ctx, sh, "")
	}
	if err != nil {
		return nil, fmt.Errorf("dynamodb stream %s (table %q), shard %s: get shard iterator: %w", aws.ToString(in.StreamArn), s.cfg.Table, sh.id, err)
	}
	return out.ShardIterator, nil
}

// waitRoom waits until the buffer has room and returns how much; zero when
// ctx ended.
func (s *Source) waitRoom(ctx context.Context) int {
	for {
		s.mu.Lock()
		room := s.cfg.MaxBuffered - len(s.buf)
		s.mu.Unlock()
		if room > 0 {
			return room
		}
		t := time.NewTimer(s.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0
		case <-s.room:
		case <-t.C:
		}
		t.Stop()
	}
}

// take converts records read from sh and adds their changes. s.mu is held.
func (s *Source) take(sh *shard, records []types.Record) bool {
	added := false
	for i := range records {
		r := &records[i]
		seqNum := ""
		if r.Dynamodb != nil {
			seqNum = aws.ToString(r.Dynamodb.SequenceNumber)
		}
		s.m.records.Add(1)
		ch, skip, err := s.conv.Convert(r)
		if seqNum != "" {
			sh.lastRead = seqNum
		}
		if skip != "" {
			s.m.skip(skip)
			if err != nil {
				s.warnInvalid(sh, seqNum, err)
			}
			if seqNum != "" {
				if n := len(sh.marks); n > 0 {
					sh.marks[n-1].seqNum = seqNum
				} else {
					sh.settled = seqNum
				}
			}
			continue
		}
		s.lastSeq++
		ch.Seq = s.lastSeq
		s.buf = append(s.buf, entry{sh: sh, ch: ch})
		sh.marks = append(sh.marks, mark{seq: ch.Seq, seqNum: seqNum})
		s.m.changes.Add(1)
		added = true
	}
	return added
}

// warnInvalid logs a record that cannot become a change, at most once a
// minute (they are counted as skipped "invalid"). s.mu is held.
func (s *Source) warnInvalid(sh *shard, seqNum string, err error) {
	if time.Since(s.warned) < time.Minute {
		return
	}
	s.warned = time.Now()
	s.log.Warn("dynamodb stream record skipped (more are counted, not logged, for a minute)",
		"shard", sh.id, "sequence", seqNum, "err", err)
}
