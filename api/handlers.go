package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// Health is the body of GET /v1/health.
type Health struct {
	Status string `json:"status"`
	Site   string `json:"site"`
}

// Removed is the body of a remove response.
type Removed struct {
	Removed int `json:"removed"`
}

// BatchRequest is the body of POST /v1/batch and POST /v1/transact.
type BatchRequest struct {
	Ops []db.WriteOp `json:"ops"`
}

// BatchResponse is the body of a POST /v1/batch response: one result per
// op, in order, each with its item or its error.
type BatchResponse struct {
	Results []db.BatchResult `json:"results"`
}

// TransactResponse is the body of a POST /v1/transact response.
type TransactResponse struct {
	Items []db.Item `json:"items"`
}

// modelOps are the operations of POST /v1/models/{model}/{op}.
var modelOps = []string{"create", "get", "find", "update", "upsert", "remove"}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /v1/health", s.health)
	for _, op := range modelOps {
		s.mux.HandleFunc("POST /v1/models/{model}/"+op, s.modelOp(op))
	}
	s.mux.HandleFunc("POST /v1/batch", s.batch)
	s.mux.HandleFunc("POST /v1/transact", s.transact)
	s.pipelineRoutes()
	if s.ui {
		s.uiRoutes()
	}
	s.mux.HandleFunc("/", s.noRoute)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Health{Status: "ok", Site: s.site})
}

// modelOp serves one operation on a model: the body is the item's
// properties, the query string the params.
func (s *Server) modelOp(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		model := r.PathValue("model")
		p, err := paramsFromQuery(r.URL.RawQuery)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var props db.Item
		if err := s.decodeBody(w, r, &props, true); err != nil {
			s.writeError(w, r, err)
			return
		}
		if props == nil {
			props = db.Item{}
		}
		store, err := s.store(r.URL.Query().Get("storage"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		ctx := r.Context()
		var out any
		switch op {
		case "create":
			out, err = store.Create(ctx, model, props, p)
		case "get":
			out, err = store.Get(ctx, model, props, p)
		case "find":
			if p != nil {
				p.Shared = true // the items are only encoded into the response
			}
			out, err = store.Find(ctx, model, props, p)
		case "update":
			out, err = store.Update(ctx, model, props, p)
		case "upsert":
			out, err = store.Upsert(ctx, model, props, p)
		case "remove":
			var n int
			n, err = store.Remove(ctx, model, props, p)
			out = Removed{Removed: n}
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status := http.StatusOK
		if op == "create" {
			status = http.StatusCreated
		}
		writeJSON(w, status, out)
	}
}

// store picks the store a model operation addresses by its name in the
// config: the local one (also when no name is given), or another of the
// process.
func (s *Server) store(name string) (Database, error) {
	if name == "" || name == s.name {
		return s.db, nil
	}
	if d, ok := s.stores[name]; ok && d != nil {
		return d, nil
	}
	known := make([]string, 0, len(s.stores)+1)
	for n := range s.stores {
		known = append(known, n)
	}
	if s.name != "" {
		known = append(known, s.name)
	}
	slices.Sort(known)
	return nil, fmt.Errorf("%w: storage %q is not served here (known: %s)", pipeline.ErrNotFound, name, strings.Join(known, ", "))
}

func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	ops, err := s.decodeOps(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	results, err := s.db.Batch(r.Context(), ops)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, BatchResponse{Results: results})
}

func (s *Server) transact(w http.ResponseWriter, r *http.Request) {
	ops, err := s.decodeOps(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	items, err := s.db.Transact(r.Context(), ops)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, TransactResponse{Items: items})
}

// decodeOps reads and checks a BatchRequest.
func (s *Server) decodeOps(w http.ResponseWriter, r *http.Request) ([]db.WriteOp, error) {
	if r.URL.RawQuery != "" {
		return nil, fmt.Errorf("%w: this endpoint takes no query parameters", pipeline.ErrInvalid)
	}
	var req BatchRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		return nil, err
	}
	if len(req.Ops) == 0 {
		return nil, fmt.Errorf("%w: ops: want at least one write", pipeline.ErrInvalid)
	}
	for i := range req.Ops {
		op := &req.Ops[i]
		if !op.Op.Valid() {
			return nil, fmt.Errorf("%w: ops[%d].op: %q is not one of create, update, upsert, remove", pipeline.ErrInvalid, i, op.Op)
		}
		if op.Model == "" {
			return nil, fmt.Errorf("%w: ops[%d].model: is required", pipeline.ErrInvalid, i)
		}
		if op.Item == nil {
			op.Item = db.Item{}
		}
	}
	return req.Ops, nil
}

// noRoute answers requests no endpoint matches: 405 when the path exists
// for another method, else 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, errStatus(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			"method %s is not allowed on %s (use %s)", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	s.writeError(w, r, errStatus(http.StatusNotFound, CodeNotFound, "no endpoint %s %s", r.Method, r.URL.Path))
}
