package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/iotod/iotod/pipeline"
)

// API is the part of the DynamoDB client the store uses. *dynamodb.Client
// implements it; tests wrap it to inject faults.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// errConflict is a conditional write that failed because another writer
// changed an item the transaction read: Update runs its function again.
var errConflict = errors.New("an item read by the update was changed by another writer")

var retryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// retryable reports whether err is throttling or a transient failure,
// worth another attempt after a backoff.
func retryable(err error) bool {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		retry := false
		for _, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "", "None":
			case "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded", "TransactionConflict":
				retry = true
			default:
				return false
			}
		}
		return retry
	}
	var conflict *types.TransactionConflictException
	if errors.As(err, &conflict) {
		return true
	}
	return retryables.IsErrorRetryable(err) == aws.TrueTernary
}

// call runs one DynamoDB request, retrying throttling and transient
// failures with exponential backoff and full jitter up to MaxAttempts.
// Its error names the table, the operation and what it was on, and is
// marked permanent when no retry can fix it.
func (s *Store) call(ctx context.Context, op, what string, fn func(ctx context.Context) error) error {
	delay := s.cfg.RetryDelay
	var err error
	attempt := 1
	for ; ; attempt++ {
		if err = ctx.Err(); err != nil {
			return fmt.Errorf("dynamodb table %q: %s %s: %w", s.cfg.Table, op, what, err)
		}
		if err = fn(ctx); err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, errConflict) || !retryable(err) || attempt >= s.cfg.MaxAttempts {
			break
		}
		s.retries.Add(1)
		t := time.NewTimer(rand.N(delay) + 1)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay = min(delay*2, s.cfg.MaxRetryDelay)
	}
	return s.opError(op, what, err, attempt)
}

// opError wraps err from DynamoDB with the table, the operation and its
// subject, says what it means, and marks what no retry can fix.
func (s *Store) opError(op, what string, err error, attempts int) error {
	prefix := fmt.Sprintf("dynamodb table %q: %s %s", s.cfg.Table, op, what)
	if errors.Is(err, errConflict) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return pipeline.Permanent(fmt.Errorf("%s: table %q not found at %s (create it as docs/dynamodb.md shows, or set create_table: true for development): %w",
			prefix, s.cfg.Table, s.where(), err))
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); code {
		case "ValidationException":
			sentinel := pipeline.ErrInvalid
			if strings.Contains(ae.ErrorMessage(), "size has exceeded") || strings.Contains(ae.ErrorMessage(), "Item size") {
				sentinel = pipeline.ErrTooLarge
			}
			return pipeline.Permanent(fmt.Errorf("%s: %w: DynamoDB refused the request: %w", prefix, sentinel, err))
		case "UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException",
			"MissingAuthenticationTokenException", "ExpiredTokenException", "IncompleteSignatureException":
			return pipeline.Permanent(fmt.Errorf("%s: the AWS credentials were refused (%s; check access_key_id, the default AWS chain and the IAM policy in docs/dynamodb.md): %w",
				prefix, code, err))
		}
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ValidationError":
				sentinel := pipeline.ErrInvalid
				if strings.Contains(aws.ToString(r.Message), "size") {
					sentinel = pipeline.ErrTooLarge
				}
				return pipeline.Permanent(fmt.Errorf("%s: %w: DynamoDB refused the transaction: %s: %w", prefix, sentinel, aws.ToString(r.Message), err))
			case "ItemCollectionSizeLimitExceeded":
				return pipeline.Permanent(fmt.Errorf("%s: %w: an item collection is over DynamoDB's 10 GB local index limit: %w", prefix, pipeline.ErrTooLarge, err))
			}
		}
	}
	if strings.Contains(err.Error(), "failed to retrieve credentials") || strings.Contains(err.Error(), "no EC2 IMDS role found") {
		return pipeline.Permanent(fmt.Errorf("%s: no AWS credentials (set them in the default AWS chain, or access_key_id for tests): %w", prefix, err))
	}
	if retryable(err) {
		return fmt.Errorf("%s: gave up after %d attempts (throttled or unavailable; retry later): %w", prefix, attempts, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// where names the endpoint the store talks to, for errors.
func (s *Store) where() string {
	if s.cfg.Endpoint != "" {
		return s.cfg.Endpoint
	}
	return "region " + s.region
}
