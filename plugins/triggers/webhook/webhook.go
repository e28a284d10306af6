package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/triggers/filter"
)

// Trigger POSTs the changes it selects. It is safe for concurrent use.
type Trigger struct {
	log           *slog.Logger
	site          string
	filter        filter.Filter
	url           string // as configured
	target        string // the URL without query or credentials, for errors
	client        *http.Client
	headers       http.Header
	secret        []byte // empty: unsigned
	timeout       time.Duration
	maxRetries    int
	retryDelay    time.Duration
	maxRetryDelay time.Duration
	perChange     bool
	// jitter picks a wait from 0 to its argument (fullJitter; tests fix it).
	jitter func(time.Duration) time.Duration
}

// batchBody is the body of a request per batch.
type batchBody struct {
	Pipeline string          `json:"pipeline"`
	Changes  []filter.Change `json:"changes"`
}

// changeBody is the body of a request per change.
type changeBody struct {
	Pipeline string        `json:"pipeline"`
	Change   filter.Change `json:"change"`
}

// Fire POSTs the selected changes: in one request, or one request per
// change in order, stopping at the first that fails. It returns nil when
// every request got a 2xx. A 4xx (but 408 and 429) is a permanent error
// (pipeline.IsPermanent); other failures, once max_retries are spent, are
// errors worth retrying later. ctx ends the retries at once.
func (t *Trigger) Fire(ctx context.Context, pipelineName string, changes []pipeline.Change) error {
	sel := t.filter.Select(t.site, changes)
	if len(sel) == 0 {
		return nil
	}
	if !t.perChange {
		body, err := json.Marshal(batchBody{Pipeline: pipelineName, Changes: filter.Payloads(sel)})
		if err != nil {
			return fmt.Errorf("webhook trigger: encode %d changes: %w", len(sel), err)
		}
		return t.deliver(ctx, pipelineName, len(sel), body)
	}
	for i, c := range sel {
		body, err := json.Marshal(changeBody{Pipeline: pipelineName, Change: filter.Payload(c)})
		if err != nil {
			return fmt.Errorf("webhook trigger: encode change %s: %w", c.Key, err)
		}
		if err := t.deliver(ctx, pipelineName, 1, body); err != nil {
			return fmt.Errorf("change %d of %d (%s %s %s): %w", i+1, len(sel), c.Model, c.Op, c.Key, err)
		}
	}
	return nil
}

// deliver POSTs body, retrying as configured, and logs the outcome.
func (t *Trigger) deliver(ctx context.Context, pipelineName string, n int, body []byte) error {
	start := time.Now()
	attempts, err := t.post(ctx, body)
	if err != nil {
		return err
	}
	t.log.DebugContext(ctx, "webhook delivered", "pipeline", pipelineName, "url", t.target,
		"changes", n, "bytes", len(body), "attempts", attempts, "duration", time.Since(start))
	return nil
}

var _ pipeline.Trigger = (*Trigger)(nil)
