package stream

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotod/iotod/pipeline"
)

// errKind is how a failed call is treated.
type errKind int

const (
	// kindOther: not retried here; the caller's loop tries again later.
	kindOther errKind = iota
	// kindThrottled: retried with backoff and counted.
	kindThrottled
	// kindTransient: a network or server fault, retried with backoff.
	kindTransient
	// kindPermanent: retrying cannot help (missing table or stream, bad
	// request, credentials): marked pipeline.Permanent.
	kindPermanent
	// kindCondition: a conditional write's condition failed.
	kindCondition
)

func errCode(err error) string {
	var ae interface{ ErrorCode() string } // smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func classify(err error) errKind {
	var tce *ddb.TransactionCanceledException
	if errors.As(err, &tce) {
		// Cancelled by a failed condition, or by a conflict with another
		// write of the same item (retried).
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return kindCondition
			}
		}
		return kindTransient
	}
	switch errCode(err) {
	case "ProvisionedThroughputExceededException", "LimitExceededException", "RequestLimitExceeded",
		"ThrottlingException", "Throttling", "TooManyRequestsException":
		return kindThrottled
	case "InternalServerError", "InternalFailure", "ServiceUnavailable", "TransactionConflictException":
		return kindTransient
	case "ConditionalCheckFailedException":
		return kindCondition
	case "ResourceNotFoundException", "ValidationException", "AccessDeniedException", "UnrecognizedClientException",
		"InvalidSignatureException", "MissingAuthenticationTokenException", "IncompleteSignature",
		"InvalidClientTokenId", "ExpiredTokenException", "SerializationException":
		return kindPermanent
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() >= 500 {
		return kindTransient
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return kindTransient
	}
	return kindOther
}

// call runs fn, retrying throttling and transient faults up to
// MaxAttempts times with exponential backoff and jitter. A permanent
// fault comes back marked pipeline.Permanent.
func (s *Source) call(ctx context.Context, fn func(context.Context) error) error {
	delay := s.cfg.RetryDelay
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		kind := classify(err)
		if kind == kindThrottled {
			s.m.throttles.Add(1)
		}
		if kind == kindPermanent {
			return pipeline.Permanent(err)
		}
		if (kind != kindThrottled && kind != kindTransient) || attempt >= s.cfg.MaxAttempts {
			return err
		}
		s.m.retries.Add(1)
		if !sleep(ctx, jitter(delay)) {
			return err
		}
		delay = min(2*delay, s.cfg.MaxRetryDelay)
	}
}

// jitter picks a random delay between half of d and d ("equal jitter"):
// throttled workers spread out and none retries at once.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
