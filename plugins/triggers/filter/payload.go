package filter

import (
	"encoding/json"

	"github.com/iotod/iotod/pipeline"
)

// Change is a change as the delivering triggers send it: the fields a
// receiver needs, without the outbox position (Seq), which only means
// something on the site that assigned it.
type Change struct {
	Model string       `json:"model"`
	Op    pipeline.Op  `json:"op"`
	Key   pipeline.Key `json:"key"`
	// Item is the whole item after the write; absent for a remove.
	Item    json.RawMessage  `json:"item,omitempty"`
	Version pipeline.Version `json:"version"`
	// Origin is the site that made the change.
	Origin string `json:"origin"`
	// Time is the commit's wall clock in Unix milliseconds.
	Time int64 `json:"time"`
}

// Payload converts one change to its delivered form.
func Payload(c pipeline.Change) Change {
	return Change{Model: c.Model, Op: c.Op, Key: c.Key, Item: c.Item, Version: c.Version, Origin: c.Origin, Time: c.Time}
}

// Payloads converts changes to their delivered form; never nil, so an
// empty list is written as [].
func Payloads(changes []pipeline.Change) []Change {
	out := make([]Change, len(changes))
	for i, c := range changes {
		out[i] = Payload(c)
	}
	return out
}
