package api

import (
	"net/http"

	"github.com/iotod/iotod/runner"
)

// Triggers is the body of GET /v1/triggers: each trigger queue with its
// waiting and dead deliveries.
type Triggers struct {
	Triggers []runner.TriggerStatus `json:"triggers"`
}

// ReplayRequest is the body of POST /v1/triggers/replay.
type ReplayRequest struct {
	// Trigger is the queue's name, pipeline:trigger (GET /v1/triggers
	// lists them).
	Trigger string `json:"trigger"`
}

// Replayed is the answer to POST /v1/triggers/replay.
type Replayed struct {
	Trigger  string `json:"trigger"`
	Replayed int    `json:"replayed"`
}

func (s *Server) triggers(w http.ResponseWriter, r *http.Request) {
	if _, err := singleQuery(r.URL.RawQuery); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.pipes == nil {
		writeJSON(w, http.StatusOK, Triggers{Triggers: []runner.TriggerStatus{}})
		return
	}
	list, err := s.pipes.Triggers(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Triggers{Triggers: list})
}

func (s *Server) replayTriggers(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Trigger == "" {
		s.writeError(w, r, errStatus(http.StatusBadRequest, CodeInvalid, "trigger: required (GET /v1/triggers lists them)"))
		return
	}
	if s.pipes == nil {
		s.writeError(w, r, errNoPipelines())
		return
	}
	n, err := s.pipes.ReplayTriggers(r.Context(), req.Trigger)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Replayed{Trigger: req.Trigger, Replayed: n})
}
