package dynamodb

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// Limits of the retry settings.
const (
	maxMaxAttempts     = 100
	maxConflictRetries = 1000
	maxAttrNameLen     = 255
)

var (
	// tablePattern is DynamoDB's rule for table names.
	tablePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	// regionPattern accepts AWS region names (us-east-1, eu-central-2, local).
	regionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// Config is the user configuration of a DynamoDB store.
type Config struct {
	// Table is the DynamoDB table holding the items. Required.
	Table string `yaml:"table" desc:"DynamoDB table holding the items (default iotod); its keys and indexes follow the schema, see docs/dynamodb.md"`
	// Region is the AWS region. Empty: the default AWS chain (AWS_REGION,
	// the shared config file).
	Region string `yaml:"region" desc:"AWS region; empty: from the default AWS chain (AWS_REGION, ~/.aws/config)"`
	// Endpoint overrides the DynamoDB endpoint URL, for DynamoDB Local
	// (http://127.0.0.1:8000). Empty: AWS's endpoint for the region.
	Endpoint string `yaml:"endpoint" desc:"DynamoDB endpoint URL, for DynamoDB Local (http://127.0.0.1:8000); empty: AWS's endpoint for the region"`
	// CreateTable creates the table when it does not exist, for
	// development: keys and one index per schema index, on-demand billing,
	// a NEW_AND_OLD_IMAGES stream and TTL on the TTL attribute. It waits
	// until the table is active.
	CreateTable bool `yaml:"create_table" desc:"development: create the table (keys and indexes from the schema, on-demand, stream NEW_AND_OLD_IMAGES, TTL) when missing and wait until it is active"`
	// ConsistentRead makes Get and primary-index and local-index queries
	// strongly consistent. Default true. Global secondary indexes are always
	// eventually consistent (a DynamoDB limit).
	ConsistentRead bool `yaml:"consistent_read" desc:"strongly consistent Get and primary/local index queries (global secondary indexes are always eventually consistent)"`
	// TombstoneTTL is the least time a remove's tombstone is kept in the
	// table: a tombstone is kept until the later of the expiry its writer
	// gave it and now + TombstoneTTL. Zero keeps the writer's expiry
	// (iotod's database gives 7 days).
	TombstoneTTL time.Duration `yaml:"tombstone_ttl" desc:"least time a remove's tombstone is kept (it beats late, older updates); 0 keeps the writer's expiry (7 days from iotod's database)"`
	// TTLAttribute is the attribute DynamoDB's TTL deletes items by, which
	// also holds the expiry of tombstones and of items of models without a
	// ttl field. Empty: the schema's ttl field when its models agree on
	// one, else "_expires".
	TTLAttribute string `yaml:"ttl_attribute" desc:"attribute the table's TTL is on (expiry of tombstones and of models without a ttl field); empty: the schema's ttl field, else _expires"`
	// AccessKeyID and SecretAccessKey are static credentials, meant for
	// tests and DynamoDB Local. Empty: the default AWS credential chain
	// (environment, shared files, SSO, instance or task role).
	AccessKeyID string `yaml:"access_key_id" desc:"static credentials for tests and DynamoDB Local; empty: the default AWS credential chain (environment, ~/.aws, SSO, instance or task role)"`
	// SecretAccessKey goes with AccessKeyID.
	SecretAccessKey string `yaml:"secret_access_key" desc:"secret of access_key_id (tests and DynamoDB Local only)"`
	// MaxAttempts bounds the attempts of one DynamoDB call that is
	// throttled or fails transiently; then the call fails with a retryable
	// error. Default 8.
	MaxAttempts int `yaml:"max_attempts" desc:"attempts of one DynamoDB call when throttled or failing transiently (backoff with jitter), 1 to 100"`
	// RetryDelay is the first backoff delay; each retry doubles it, up to
	// MaxRetryDelay, and full jitter picks a delay below it. Default 50ms.
	RetryDelay time.Duration `yaml:"retry_delay" desc:"first backoff delay, doubled per retry up to max_retry_delay, with full jitter"`
	// MaxRetryDelay caps the backoff delay. Default 5s.
	MaxRetryDelay time.Duration `yaml:"max_retry_delay" desc:"cap of the backoff delay"`
	// ConflictRetries is how many times an Update runs its function again
	// after another writer changed an item it read. Default 10.
	ConflictRetries int `yaml:"conflict_retries" desc:"times an update is run again when another writer changed an item it read (optimistic concurrency), 0 to 1000"`
	// Stream feeds the table's changes, read from its DynamoDB stream, to
	// the pipelines that read this store's outbox (the cloud's down
	// pipeline): every write, iotod's and other writers'. The table's
	// stream must be on with NEW_AND_OLD_IMAGES. Default true; false
	// leaves the store without an outbox (a store only written to).
	Stream bool `yaml:"stream" desc:"feed the table's changes (its DynamoDB stream, NEW_AND_OLD_IMAGES) to the pipelines reading this store; false: no outbox"`
	// CatchUpIndexes answers a device's catch-up from two global indexes,
	// iotod-owner (OwnerAttribute, the schema's updated field) and
	// iotod-type (the type field, the updated field), reading only what
	// the device gets. Default true: create_table creates them; a table
	// without them is walked (a Scan) instead, with a warning.
	CatchUpIndexes bool `yaml:"catch_up_indexes" desc:"answer device catch-ups from the indexes iotod-owner and iotod-type (see docs/dynamodb.md); without them a catch-up scans the table"`
	// OwnerAttribute is the item attribute naming the owning device, the
	// hash key of the iotod-owner index; it must be the cloud pipelines'
	// owner. Default deviceId.
	OwnerAttribute string `yaml:"owner_attribute" desc:"attribute naming an item's device (the pipelines' owner), hash key of the iotod-owner index"`

	_ struct{}
}

// DefaultTable is the table name when the config gives none.
const DefaultTable = "iotod"

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{
		Table:           DefaultTable,
		ConsistentRead:  true,
		MaxAttempts:     8,
		RetryDelay:      50 * time.Millisecond,
		MaxRetryDelay:   5 * time.Second,
		ConflictRetries: 10,
		Stream:          true,
		CatchUpIndexes:  true,
		OwnerAttribute:  "deviceId",
	}
}

// Validate reports every fault of c, each naming its field. The faults
// wrap pipeline.ErrInvalid.
func (c Config) Validate() error {
	var errs []error
	if c.Table == "" {
		errs = append(errs, invalidField("table", "must be set"))
	} else if !tablePattern.MatchString(c.Table) {
		errs = append(errs, invalidField("table", fmt.Sprintf("%q is not a DynamoDB table name: 3 to 255 of A-Z a-z 0-9 _ . -",
			pipeline.Truncate(c.Table, 64))))
	}
	if c.Region != "" && !regionPattern.MatchString(c.Region) {
		errs = append(errs, invalidField("region", fmt.Sprintf("%q is not a region name such as us-east-1", pipeline.Truncate(c.Region, 64))))
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			errs = append(errs, invalidField("endpoint", err.Error()))
		}
	}
	if c.TombstoneTTL < 0 {
		errs = append(errs, invalidField("tombstone_ttl", fmt.Sprintf("must not be negative, got %s", c.TombstoneTTL)))
	} else if c.TombstoneTTL > 0 && c.TombstoneTTL < time.Second {
		errs = append(errs, invalidField("tombstone_ttl", fmt.Sprintf("must be 0 or at least 1s (DynamoDB keeps expiry in seconds), got %s", c.TombstoneTTL)))
	}
	if c.TTLAttribute != "" {
		if err := checkAttrName(c.TTLAttribute); err != nil {
			errs = append(errs, invalidField("ttl_attribute", err.Error()))
		}
	}
	if c.CatchUpIndexes {
		if c.OwnerAttribute == "" {
			errs = append(errs, invalidField("owner_attribute", "must be set when catch_up_indexes is on"))
		} else if err := checkAttrName(c.OwnerAttribute); err != nil {
			errs = append(errs, invalidField("owner_attribute", err.Error()))
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, invalidField("access_key_id", "access_key_id and secret_access_key must be set together (or both left empty for the default AWS chain)"))
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > maxMaxAttempts {
		errs = append(errs, invalidField("max_attempts", fmt.Sprintf("must be between 1 and %d, got %d", maxMaxAttempts, c.MaxAttempts)))
	}
	if c.RetryDelay <= 0 {
		errs = append(errs, invalidField("retry_delay", fmt.Sprintf("must be positive, got %s", c.RetryDelay)))
	}
	if c.MaxRetryDelay < c.RetryDelay || c.MaxRetryDelay <= 0 {
		errs = append(errs, invalidField("max_retry_delay", fmt.Sprintf("must be positive and at least retry_delay (%s), got %s", c.RetryDelay, c.MaxRetryDelay)))
	}
	if c.ConflictRetries < 0 || c.ConflictRetries > maxConflictRetries {
		errs = append(errs, invalidField("conflict_retries", fmt.Sprintf("must be between 0 and %d, got %d", maxConflictRetries, c.ConflictRetries)))
	}
	return errors.Join(errs...)
}

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", pipeline.Truncate(s, 64), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: the scheme must be http or https", pipeline.Truncate(s, 64))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", pipeline.Truncate(s, 64))
	}
	return nil
}

func checkAttrName(s string) error {
	if len(s) > maxAttrNameLen {
		return fmt.Errorf("%q is longer than %d bytes", pipeline.Truncate(s, 64), maxAttrNameLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return fmt.Errorf("%q holds a control or invalid character", pipeline.Truncate(s, 64))
		}
	}
	return nil
}

// fieldError is a fault of one config field.
type fieldError struct{ field, msg string }

func invalidField(field, msg string) error { return fieldError{field: field, msg: msg} }

func (e fieldError) Error() string { return e.field + ": " + e.msg }
func (e fieldError) Unwrap() error { return pipeline.ErrInvalid }
