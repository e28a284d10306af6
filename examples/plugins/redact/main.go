// Command redact is an example iotod stage plugin: it removes fields from
// the items of the changes that pass (passwords, tokens, personal data
// that must not leave the device) and refuses the changes of models the
// config names. Build it with `go build`, then name it in the YAML:
//
//	stages:
//	  - plugin/redact:
//	      path: ./redact
//	      config: {fields: [password, token], refuse: [Secret]}
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

// config is the plugin's config: the `config` mapping of the YAML.
type config struct {
	// Fields are removed from every item.
	Fields []string `json:"fields"`
	// Refuse names models whose changes are refused (kept as dead
	// letters with the reason).
	Refuse []string `json:"refuse"`
}

func parse(b []byte) (config, error) {
	var c config
	if err := sdk.Decode(b, &c); err != nil {
		return c, err
	}
	if len(c.Fields) == 0 && len(c.Refuse) == 0 {
		return c, errors.New("config: give fields to remove or models to refuse")
	}
	return c, nil
}

type stage struct{ cfg config }

// Process redacts the items of b and refuses the changes of the refused
// models.
func (s *stage) Process(_ context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
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
				return nil, pipeline.Permanent(fmt.Errorf("redact: %s %s: %w", c.Model, c.Key, err))
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

func main() {
	sdk.Serve(sdk.Plugin{
		Validate: func(b []byte) error { _, err := parse(b); return err },
		Stage: func(b []byte) (pipeline.Stage, error) {
			c, err := parse(b)
			return &stage{cfg: c}, err
		},
	})
}
