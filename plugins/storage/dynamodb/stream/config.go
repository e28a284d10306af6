package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/iotod/iotod/pipeline"
)

// TableAPI is what the source needs of a DynamoDB client
// (*dynamodb.Client has it): the table's description, and the lease and
// checkpoint items it keeps in the table.
type TableAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// StreamsAPI is what the source needs of a DynamoDB Streams client
// (*dynamodbstreams.Client has it).
type StreamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

var (
	_ TableAPI   = (*dynamodb.Client)(nil)
	_ StreamsAPI = (*dynamodbstreams.Client)(nil)
)

// Defaults of Config.
const (
	DefaultLeaseDuration   = 10 * time.Second
	DefaultRefreshInterval = 5 * time.Second
	DefaultPollInterval    = 250 * time.Millisecond
	DefaultMaxBuffered     = 10000
	DefaultMaxAttempts     = 8
	DefaultRetryDelay      = 50 * time.Millisecond
	DefaultMaxRetryDelay   = 5 * time.Second
)

// Config configures a Source. Client, Streams, Table and Site are
// required; zero values of the others take the defaults.
type Config struct {
	// Client is the DynamoDB client of the table.
	Client TableAPI
	// Streams is the DynamoDB Streams client of the same account and
	// region (same endpoint for DynamoDB Local).
	Streams StreamsAPI
	// Table is the table whose stream is read. Its stream must be on with
	// the view type NEW_AND_OLD_IMAGES.
	Table string
	// Site is this cloud worker's site: the origin of changes made by
	// writes outside iotod (OneTable, the SDK, the console).
	Site string
	// Worker names this worker in the lease items (default: the host
	// name). A random suffix is always added, so two sources never share an
	// owner id.
	Worker string

	// TypeField, UpdatedField, HashKey and SortKey are the item layout
	// (defaults _type, updated, pk, sk), as in the schema's params and
	// primary index.
	TypeField, UpdatedField, HashKey, SortKey string

	// LeaseDuration is how long a shard's lease lasts without a renewal:
	// a worker that dies loses its shards to others after about this long
	// (plus up to RefreshInterval). Default 10s.
	LeaseDuration time.Duration
	// RenewInterval is how often held leases are renewed. Default a third
	// of LeaseDuration; at most half of it.
	RenewInterval time.Duration
	// RefreshInterval is how often (±20%) the shards are listed, free or
	// expired leases taken and finished shards' children started. Default
	// 5s.
	RefreshInterval time.Duration
	// PollInterval is the pause between GetRecords calls on a shard that
	// returned nothing new (or less than a full page). Default 250ms.
	PollInterval time.Duration
	// MaxBuffered bounds the changes read and not yet trimmed; shard
	// readers wait while it is reached. Default 10000.
	MaxBuffered int

	// MaxAttempts bounds the attempts of one call that is throttled or
	// fails transiently (backoff from RetryDelay, doubled up to
	// MaxRetryDelay, each wait a random time between half of it and all of
	// it). Defaults 8, 50ms, 5s.
	MaxAttempts   int
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration

	// Logger receives lease changes and errors, never a line per record
	// (nil: slog.Default()).
	Logger *slog.Logger
}

var tablePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.LeaseDuration, DefaultLeaseDuration)
	set(&c.RenewInterval, c.LeaseDuration/3)
	set(&c.RefreshInterval, DefaultRefreshInterval)
	set(&c.PollInterval, DefaultPollInterval)
	set(&c.RetryDelay, DefaultRetryDelay)
	set(&c.MaxRetryDelay, DefaultMaxRetryDelay)
	if c.MaxBuffered == 0 {
		c.MaxBuffered = DefaultMaxBuffered
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	c.TypeField = or(c.TypeField, "_type")
	c.UpdatedField = or(c.UpdatedField, "updated")
	c.HashKey = or(c.HashKey, "pk")
	c.SortKey = or(c.SortKey, "sk")
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate reports every fault of c (after withDefaults), each naming its
// field; they wrap pipeline.ErrInvalid.
func (c Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: dynamodb stream source: %s: %s", pipeline.ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	if c.Client == nil {
		bad("Client", "must be set")
	}
	if c.Streams == nil {
		bad("Streams", "must be set")
	}
	if !tablePattern.MatchString(c.Table) {
		bad("Table", "%q is not a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)", pipeline.Truncate(c.Table, 64))
	}
	if err := pipeline.ValidSite(c.Site); err != nil {
		bad("Site", "%v", err)
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, "must be positive, got %s", d)
		}
	}
	positive("LeaseDuration", c.LeaseDuration)
	positive("RenewInterval", c.RenewInterval)
	positive("RefreshInterval", c.RefreshInterval)
	positive("PollInterval", c.PollInterval)
	positive("RetryDelay", c.RetryDelay)
	if c.RenewInterval > c.LeaseDuration/2 {
		bad("RenewInterval", "%s is over half the lease duration %s: a lease would lapse after one failed renewal", c.RenewInterval, c.LeaseDuration)
	}
	if c.MaxRetryDelay < c.RetryDelay {
		bad("MaxRetryDelay", "%s is below RetryDelay %s", c.MaxRetryDelay, c.RetryDelay)
	}
	if c.MaxBuffered < 1 {
		bad("MaxBuffered", "must be at least 1, got %d", c.MaxBuffered)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 100 {
		bad("MaxAttempts", "must be between 1 and 100, got %d", c.MaxAttempts)
	}
	for field, v := range map[string]string{"TypeField": c.TypeField, "UpdatedField": c.UpdatedField, "HashKey": c.HashKey, "SortKey": c.SortKey} {
		if len(v) > 255 {
			bad(field, "longer than 255 bytes")
		}
	}
	if c.HashKey == c.SortKey {
		bad("SortKey", "is the hash key %q", c.HashKey)
	}
	return errors.Join(errs...)
}
