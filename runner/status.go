package runner

import (
	"context"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// PipelineStatus is one pipeline's state, as `iotod status` shows it.
type PipelineStatus struct {
	Name      string             `json:"name"`
	Direction pipeline.Direction `json:"direction"`
	From      string             `json:"from"`
	To        string             `json:"to"`
	// State is starting, running, draining, drained or stopped.
	State string `json:"state"`
	// Connected is the transport's connection state, when it reports one.
	Connected *bool `json:"connected,omitempty"`
	// InFlight counts changes sent and not yet acknowledged (senders), and
	// InFlightBytes their payload bytes.
	InFlight      int `json:"in_flight"`
	InFlightBytes int `json:"in_flight_bytes,omitempty"`
	// Outbox is the source store's outbox (senders).
	Outbox *pipeline.OutboxStats `json:"outbox,omitempty"`
	// LastAck is when the far side last acknowledged a batch (senders), or
	// when this pipeline last applied one (receivers).
	LastAck   time.Time `json:"last_ack,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// CatchingUp is set on a device's down pipeline while a catch-up runs;
	// CatchUpChanges counts the changes catch-ups brought since start.
	CatchingUp     bool  `json:"catching_up,omitempty"`
	CatchUpChanges int64 `json:"catch_up_changes,omitempty"`

	refreshed time.Time
}

// Status is the runner's state.
type Status struct {
	Site        string           `json:"site"`
	Pipelines   []PipelineStatus `json:"pipelines"`
	DeadLetters int64            `json:"dead_letters"`
}

// Connector is implemented by transports that know whether they are
// connected.
type Connector interface {
	Connected() bool
}

// ConnectionCounter is implemented by transports that count their
// connection's ups and downs (mqtt): a count that changed says the
// connection went and came back, also between two looks at Connected.
type ConnectionCounter interface {
	ConnectionChanges() uint64
}

func (s *sender) setState(state string) {
	s.mu.Lock()
	s.status.State = state
	s.mu.Unlock()
}

func (s *sender) setLastError(err error) {
	s.mu.Lock()
	s.status.LastError = err.Error()
	s.mu.Unlock()
}

// publishStatus refreshes the snapshot Status reads, at most every 200ms.
func (s *sender) publishStatus() {
	s.mu.Lock()
	fresh := time.Since(s.status.refreshed) < 200*time.Millisecond
	if !fresh {
		s.status.InFlight, s.status.InFlightBytes = s.flying, s.flyingBytes
	}
	s.mu.Unlock()
	if fresh {
		return
	}
	s.m.inFlight.WithLabelValues(s.spec.Name).Set(float64(s.flying))
	s.refreshOutbox()
}

// refreshOutbox reads the outbox's stats into the snapshot and the
// metrics. The loop calls it through publishStatus; snapshot calls it too
// when the loop has not for a while: the loop can be held in a publish
// (a disconnected transport), and what waits in the outbox then is what
// the status must show.
func (s *sender) refreshOutbox() {
	st, err := s.spec.Store.Outbox().Stats(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.refreshed = time.Now()
	if err != nil {
		return
	}
	s.status.Outbox = &st
	s.m.outboxDepth.WithLabelValues(s.spec.Storage).Set(float64(st.Depth))
	age := 0.0
	if st.Depth > 0 && !st.Oldest.IsZero() {
		age = time.Since(st.Oldest).Seconds()
	}
	s.m.outboxAge.WithLabelValues(s.spec.Storage).Set(age)
}

func (s *sender) snapshot() PipelineStatus {
	s.mu.Lock()
	stale := time.Since(s.status.refreshed) > time.Second
	s.mu.Unlock()
	if stale {
		s.refreshOutbox()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if c, ok := s.spec.Out.(Connector); ok {
		v := c.Connected()
		st.Connected = &v
	}
	return st
}
