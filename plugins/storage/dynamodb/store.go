package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/dynamodb/stream"
	"github.com/iotod/iotod/schema"
)

// Store is the iotod storage engine on a DynamoDB table. It is safe for
// concurrent use.
type Store struct {
	cfg    Config
	api    API
	l      *layout
	log    *slog.Logger
	region string
	now    func() time.Time
	closed atomic.Bool
	// retries counts backoffs (throttling, transient failures), conflicts
	// the Update runs repeated after a conflict; for tests and metrics.
	retries   atomic.Int64
	conflicts atomic.Int64
	// src is the change stream feeding the outbox (nil: cfg.Stream off).
	src *stream.Source
	// syncWhy says why catch-ups walk the table, when they do.
	syncWhy string
}

var _ pipeline.Store = (*Store)(nil)

// Option changes how Open builds the store.
type Option func(*options)

type options struct {
	wrap func(API) API
	now  func() time.Time
	site string
}

// WithSite names the cloud site the store serves: the origin of changes
// its stream reads from writes made outside iotod.
func WithSite(site string) Option { return func(o *options) { o.site = site } }

// WithAPI wraps the DynamoDB client the store uses (to observe or inject
// faults in tests).
func WithAPI(wrap func(API) API) Option { return func(o *options) { o.wrap = wrap } }

// withClock sets the store's clock (tests).
func withClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Open connects to the table cfg names, whose layout the schema gives (nil:
// pk/sk and no secondary index). It checks that the table exists with the
// keys and indexes the schema needs, or creates it when cfg.CreateTable is
// set. Credentials come from the default AWS chain unless cfg holds static
// ones. Errors name the table.
func Open(ctx context.Context, cfg Config, sch *schema.Schema, logger *slog.Logger, opts ...Option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l, err := newLayout(cfg.Table, sch, cfg.TTLAttribute)
	if err != nil {
		return nil, err
	}
	var loadOpts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, pipeline.Permanent(fmt.Errorf("dynamodb table %q: AWS configuration: %w", cfg.Table, err))
	}
	if awsCfg.Region == "" {
		return nil, pipeline.Permanent(fmt.Errorf("%w: dynamodb table %q: no AWS region: set region in the config or AWS_REGION", pipeline.ErrInvalid, cfg.Table))
	}
	client := dynamodb.NewFromConfig(awsCfg, func(do *dynamodb.Options) {
		// The store retries itself (call), with its own bound.
		do.Retryer = aws.NopRetryer{}
		if cfg.Endpoint != "" {
			do.BaseEndpoint = aws.String(cfg.Endpoint)
			// DynamoDB Local sends a wrong CRC32 on error responses.
			do.DisableValidateResponseChecksum = true
		}
	})
	var api API = client
	if o.wrap != nil {
		api = o.wrap(api)
	}
	s := &Store{cfg: cfg, api: api, l: l, log: logger, region: awsCfg.Region, now: time.Now}
	if o.now != nil {
		s.now = o.now
	}
	if cfg.CatchUpIndexes {
		l.sync, s.syncWhy = newSyncLayout(l, sch, cfg.OwnerAttribute)
	} else {
		s.syncWhy = "catch_up_indexes is off"
	}
	if err := s.ensureTable(ctx, sch); err != nil {
		return nil, err
	}
	if l.sync != nil && !l.sync.ready {
		s.syncWhy = l.sync.why
	}
	if cfg.CatchUpIndexes && (l.sync == nil || !l.sync.ready) {
		logger.Warn("dynamodb: device catch-ups will scan the whole table", "table", cfg.Table, "why", s.syncWhy)
	}
	if cfg.Stream {
		streams := dynamodbstreams.NewFromConfig(awsCfg, func(so *dynamodbstreams.Options) {
			if cfg.Endpoint != "" {
				so.BaseEndpoint = aws.String(cfg.Endpoint)
			}
		})
		src, err := stream.New(stream.Config{Client: client, Streams: streams, Table: cfg.Table, Site: o.site,
			TypeField: l.typeField, UpdatedField: l.updated, HashKey: l.hash, SortKey: l.sort, Logger: logger})
		if err != nil {
			return nil, err
		}
		if err := src.Start(ctx); err != nil {
			return nil, err
		}
		s.src = src
	}
	return s, nil
}

// CapturesChanges reports that the table's stream feeds the outbox
// (pipeline.ChangeCapturer): the database does not Emit.
func (s *Store) CapturesChanges() bool { return s.src != nil }

// View runs fn with reads of the table. Each Get is strongly consistent
// (consistent_read); DynamoDB has no snapshot across several reads.
func (s *Store) View(ctx context.Context, fn func(tx pipeline.ReadTx) error) error {
	if s.closed.Load() {
		return s.closedErr()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dynamodb table %q: view: %w", s.cfg.Table, err)
	}
	return fn(&readTx{s: s})
}

// Update runs fn as an optimistic transaction: Gets record what they saw,
// Puts and Deletes are buffered, and at the end they are written at once
// (one conditional write, or TransactWriteItems for 2 to 100), each on the
// condition that its item is still what the transaction read. When another
// writer got there first fn runs again, up to conflict_retries times; then
// the error wraps pipeline.ErrConditionFailed.
func (s *Store) Update(ctx context.Context, fn func(tx pipeline.Tx) error) error {
	if s.closed.Load() {
		return s.closedErr()
	}
	for run := 0; ; run++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("dynamodb table %q: update: %w", s.cfg.Table, err)
		}
		tx := newWriteTx(s)
		if err := fn(tx); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("dynamodb table %q: update: %w", s.cfg.Table, err)
		}
		err := tx.commit(ctx)
		if !errors.Is(err, errConflict) {
			return err
		}
		if run >= s.cfg.ConflictRetries {
			return fmt.Errorf("%w: %w (gave up after %d runs)", pipeline.ErrConditionFailed, err, run+1)
		}
		s.conflicts.Add(1)
		// A short jittered pause lets the other writer finish.
		t := time.NewTimer(rand.N(s.cfg.RetryDelay*time.Duration(run+1)) + 1)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("dynamodb table %q: update after a conflict: %w", s.cfg.Table, ctx.Err())
		case <-t.C:
		}
	}
}

// Outbox returns the store's outbox. The DynamoDB store has none yet (the
// table's stream will be its change feed): every method but Notify
// returns ErrNoOutbox.
func (s *Store) Outbox() pipeline.Outbox {
	if s.src != nil {
		return s.src
	}
	return noOutbox{table: s.cfg.Table}
}

// Close ends the store; later calls fail with pipeline.ErrClosed. It is
// safe to call twice.
func (s *Store) Close(ctx context.Context) error {
	if s.closed.Swap(true) || s.src == nil {
		return nil
	}
	// Final checkpoints of what was trimmed; leases released, so another
	// worker takes the shards over at once.
	return s.src.Close(ctx)
}

func (s *Store) closedErr() error {
	return fmt.Errorf("dynamodb table %q: %w", s.cfg.Table, pipeline.ErrClosed)
}

// ErrNoOutbox is what Emit and the outbox return: the DynamoDB store keeps
// no outbox yet; its changes will be read from the table's stream. It
// wraps pipeline.ErrInvalid and errors.ErrUnsupported.
var ErrNoOutbox error = noOutboxError{}

type noOutboxError struct{}

func (noOutboxError) Error() string {
	return "the dynamodb store has no outbox yet (its change feed will be the table's stream)"
}
func (noOutboxError) Unwrap() []error { return []error{pipeline.ErrInvalid, errors.ErrUnsupported} }

type noOutbox struct{ table string }

func (o noOutbox) err() error { return fmt.Errorf("dynamodb table %q: %w", o.table, ErrNoOutbox) }

func (o noOutbox) Read(context.Context, uint64, int) ([]pipeline.Change, error) { return nil, o.err() }
func (o noOutbox) Trim(context.Context, uint64) error                           { return o.err() }
func (o noOutbox) Stats(context.Context) (pipeline.OutboxStats, error) {
	return pipeline.OutboxStats{}, o.err()
}

// Notify returns a channel that never receives: nothing is ever emitted.
func (o noOutbox) Notify() <-chan struct{} { return nil }

// MaxWritesPerUpdate reports the most writes one Update commits
// (pipeline.UpdateLimiter): db.Apply splits larger batches by it.
func (s *Store) MaxWritesPerUpdate() int { return MaxWritesPerUpdate }
