// Package redact is the logic of the example redact stage: remove fields
// from items, refuse the changes of some models. The plugin binary
// (examples/plugins/redact) serves it; iotod bench plugin also runs it
// in-process, to compare.
package redact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

// Config is the plugin's config: the `config` mapping of the YAML.
type Config struct {
	// Fields are removed from every item.
	Fields []string `json:"fields"`
	// Refuse names models whose changes are refused (kept as dead
	// letters with the reason).
	Refuse []string `json:"refuse"`
}

// Parse reads and checks a config.
func Parse(b []byte) (Config, error) {
	var c Config
	if err := sdk.Decode(b, &c); err != nil {
		return c, err
	}
	if len(c.Fields) == 0 && len(c.Refuse) == 0 {
		return c, errors.New("config: give fields to remove or models to refuse")
	}
	return c, nil
}

// Stage is the redact stage.
type Stage struct{ cfg Config }

// New returns the stage of c.
func New(c Config) *Stage { return &Stage{cfg: c} }

// Process redacts the items of b and refuses the changes of the refused
// models.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	out := *b
	out.Changes = make([]pipeline.Change, 0, len(b.Changes))
	for _, c := range b.Changes {
		if slices.Contains(s.cfg.Refuse, c.Model) {
			out.Rejected = append(out.Rejected, pipeline.Reject{Model: c.Model, Key: c.Key, Seq: c.Seq,
				Reason: fmt.Sprintf("redact: model %s does not leave this site", c.Model)})
			continue
		}
		if len(c.Item) > 0 && len(s.cfg.Fields) > 0 {
			var item map[string]json.RawMessage
			if err := json.Unmarshal(c.Item, &item); err != nil {
				// One bad item is refused alone, not the whole batch.
				out.Rejected = append(out.Rejected, pipeline.Reject{Model: c.Model, Key: c.Key, Seq: c.Seq,
					Reason: "redact: the item is not a JSON object: " + pipeline.Truncate(err.Error(), 120)})
				continue
			}
			for _, f := range s.cfg.Fields {
				delete(item, f)
			}
			body, err := json.Marshal(item)
			if err != nil {
				return nil, err
			}
			c.Item = body
		}
		out.Changes = append(out.Changes, c)
	}
	return &out, nil
}
