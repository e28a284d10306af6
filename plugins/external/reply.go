package external

import (
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// checkReply refuses a stage's reply that is not a subset of its input:
// a change or a rejection of a key (with its model) that was not in the
// batch, a key more often than it was sent, or more changes than were
// sent. A plugin that
// does so has a bug (or is hostile); the batch is not passed on.
func checkReply(in, out *pipeline.Batch) error {
	if out == nil {
		return nil
	}
	type mk struct {
		model string
		key   pipeline.Key
	}
	sent := make(map[mk]int, len(in.Changes))
	for _, c := range in.Changes {
		sent[mk{c.Model, c.Key}]++
	}
	seen := make(map[mk]int, len(out.Changes))
	if len(out.Changes)+len(out.Rejected) > len(in.Changes)+len(in.Rejected) {
		return fmt.Errorf("returned %d changes and rejections for a batch of %d", len(out.Changes)+len(out.Rejected), len(in.Changes)+len(in.Rejected))
	}
	for _, c := range out.Changes {
		k := mk{c.Model, c.Key}
		switch {
		case sent[k] == 0:
			return fmt.Errorf("returned a change it was not given: %s %s", pipeline.Quote(c.Model), c.Key)
		case seen[k] == sent[k]:
			return fmt.Errorf("returned %s %s more often than it was given", pipeline.Quote(c.Model), c.Key)
		}
		seen[k]++
		if err := c.Validate(); err != nil {
			return fmt.Errorf("returned an invalid change: %w", err)
		}
	}
	for _, r := range out.Rejected {
		k := mk{r.Model, r.Key}
		if sent[k] == 0 && !wasRejected(in, r) {
			return fmt.Errorf("rejected a change it was not given: %s %s", pipeline.Quote(r.Model), r.Key)
		}
	}
	return nil
}

func wasRejected(in *pipeline.Batch, r pipeline.Reject) bool {
	for _, x := range in.Rejected {
		if x.Model == r.Model && x.Key == r.Key {
			return true
		}
	}
	return false
}
