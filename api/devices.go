package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/runner"
)

// Devices is the body of GET /v1/devices: a page of the cloud's devices
// (docs/operations.md, "The fleet").
type Devices = runner.FleetPage

// DevicesQuery selects a page of GET /v1/devices; zero values are the
// server's defaults.
type DevicesQuery struct {
	// Sort is site (default), last_seen, refused or pending; "-" before
	// it reverses it.
	Sort string
	// Filter keeps the devices whose site contains it.
	Filter string
	// Limit is the page's size (0: the server's default,
	// runner.DefaultFleetLimit).
	Limit int
	// After is the Next of the previous page; Page (from 1) jumps to a
	// page instead.
	After string
	Page  int
}

// maxFilterLen bounds ?filter=.
const maxFilterLen = 256

// fleetHolder is implemented by Pipelines that keep the cloud's index of
// devices (*runner.Runner; its Fleet is nil on a device).
type fleetHolder interface {
	Fleet() *runner.Fleet
}

func (s *Server) devices(w http.ResponseWriter, r *http.Request) {
	q, err := singleQuery(r.URL.RawQuery, "limit", "after", "page", "sort", "filter")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fq := runner.FleetQuery{Limit: runner.DefaultFleetLimit, Sort: q["sort"], Filter: q["filter"], After: q["after"]}
	if v, ok := q["limit"]; ok {
		fq.Limit, err = strconv.Atoi(v)
		if err != nil || fq.Limit < 0 || fq.Limit > runner.MaxFleetLimit {
			s.writeError(w, r, fmt.Errorf("%w: query parameter limit: want an integer from 0 to %d, got %s",
				pipeline.ErrInvalid, runner.MaxFleetLimit, pipeline.Quote(v)))
			return
		}
	}
	if v, ok := q["page"]; ok {
		fq.Page, err = strconv.Atoi(v)
		if err != nil || fq.Page < 1 {
			s.writeError(w, r, fmt.Errorf("%w: query parameter page: want an integer from 1, got %s", pipeline.ErrInvalid, pipeline.Quote(v)))
			return
		}
	}
	if len(fq.Filter) > maxFilterLen {
		s.writeError(w, r, fmt.Errorf("%w: query parameter filter: at most %d bytes", pipeline.ErrInvalid, maxFilterLen))
		return
	}
	var fleet *runner.Fleet
	if h, ok := s.pipes.(fleetHolder); ok {
		fleet = h.Fleet()
	}
	if fleet == nil {
		s.writeError(w, r, errStatus(http.StatusNotFound, CodeNotFound,
			"no fleet here: devices are listed by a cloud worker (a pipeline from a transport into a cloud store)"))
		return
	}
	page, err := fleet.List(fq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// Devices calls GET /v1/devices.
func (c *Client) Devices(ctx context.Context, q DevicesQuery) (*Devices, error) {
	v := url.Values{}
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	if q.Filter != "" {
		v.Set("filter", q.Filter)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	if q.Page > 0 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	path := "/v1/devices"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out Devices
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
