package runner

import (
	"github.com/iotod/iotod/pipeline"
)

// stampCursors sets a cloud down batch's cursors: Before is the highest
// version this sender sent to site before (empty after a restart), After
// the highest in the batch. A device that has not seen Before knows it
// missed changes and asks for a catch-up.
func (s *sender) stampCursors(site string, b *pipeline.Batch) {
	if s.lastSent == nil {
		s.lastSent = map[string]pipeline.Version{}
	}
	prev, seen := s.lastSent[site]
	top := prev
	for _, c := range b.Changes {
		if c.Version.Compare(top) > 0 {
			top = c.Version
		}
	}
	if seen {
		b.Before = prev.String()
	}
	b.After = top.String()
	s.lastSent[site] = top
}

// ownerRoute routes a cloud change by its owner attribute
// (pipeline.OwnerRoute).
func ownerRoute(attr string) func(c *pipeline.Change) string {
	return func(c *pipeline.Change) string { return pipeline.OwnerRoute(attr, c) }
}
