package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/runner"
)

// The status page (docs/operations.md, "The status page"): GET / renders
// the process's pipelines, dead letters, trigger queues and, on a cloud
// worker, a page of its fleet, with html/template; ui/ui.js then polls the
// JSON endpoints every second and updates the tables in place, and
// replays a trigger's dead deliveries with POST /v1/triggers/replay. The
// files are embedded: no build step, nothing fetched from elsewhere.
//
// The page's Content-Security-Policy allows only its own scripts, styles
// and requests (no inline script, no other origin) and no framing. A
// state-changing request from another origin is refused for the whole API
// (sameOrigin), beside the JSON content type POSTs need.

//go:embed ui
var uiFS embed.FS

// uiCSP is the Content-Security-Policy of the page and its assets.
const uiCSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// uiDeadLetterLimit is how many dead letters the page shows.
const uiDeadLetterLimit = 50

// uiFleetLimits are the page sizes the fleet table offers.
var uiFleetLimits = []int{50, runner.DefaultFleetLimit, 500, runner.MaxFleetLimit}

// uiAsset is an embedded file the page loads.
type uiAsset struct {
	body  []byte
	ctype string
	etag  string
}

var (
	uiAssets   = loadUIAssets()
	uiTemplate = template.Must(template.New("index.html").Funcs(template.FuncMap{
		"asset":    uiAssetURL,
		"ago":      uiAgo,
		"num":      uiNum,
		"bytes":    uiBytes,
		"outbox":   uiOutboxCells,
		"conn":     uiConn,
		"cursor":   uiCursor,
		"refusal":  uiRefusal,
		"fleetURL": uiFleetURL,
		"devRows":  uiFleetRows,
		"int64":    func(n int) int64 { return int64(n) },
		"add":      func(a, b int) int { return a + b },
		"sub":      func(a, b int) int { return a - b },
	}).ParseFS(uiFS, "ui/index.html"))
)

// loadUIAssets reads the embedded files the page links (the template is
// not one), each with its content type and an ETag of its content.
func loadUIAssets() map[string]uiAsset {
	types := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
		".svg": "image/svg+xml",
	}
	out := map[string]uiAsset{}
	err := fs.WalkDir(uiFS, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := types[path.Ext(p)]
		if !ok {
			return nil
		}
		b, err := uiFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "ui/")] = uiAsset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("api: the embedded status page: %v", err))
	}
	return out
}

// uiAssetURL is an asset's path with its content's hash, so a new build's
// file is never taken from an old cache.
func uiAssetURL(name string) (string, error) {
	a, ok := uiAssets[name]
	if !ok {
		return "", fmt.Errorf("no embedded asset %s", name)
	}
	return "/ui/" + name + "?v=" + strings.Trim(a.etag, `"`), nil
}

func (s *Server) uiRoutes() {
	s.mux.HandleFunc("GET /{$}", s.uiPage)
	s.mux.HandleFunc("GET /ui/{file}", s.uiAsset)
}

// uiHeaders are the security headers of the page and its files.
func uiHeaders(h http.Header) {
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func (s *Server) uiAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := uiAssets[r.PathValue("file")]
	if !ok {
		s.writeError(w, r, errStatus(http.StatusNotFound, CodeNotFound, "no file %s in the status page", pipeline.Quote(r.URL.Path)))
		return
	}
	uiHeaders(w.Header())
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// uiData is what the page's template renders.
type uiData struct {
	Site string
	Now  time.Time
	// Pipelines is nil when none are configured; Outbox is then the local
	// store's.
	Pipelines   []runner.PipelineStatus
	HasPipes    bool
	Outbox      *pipeline.OutboxStats
	DeadLetters []uiLetter
	DeadTotal   int64
	Triggers    []runner.TriggerStatus
	// Fleet is nil unless the process is a cloud worker.
	Fleet *uiFleet
	// Problems are what could not be read; the page shows them.
	Problems []string
}

// uiLetter is a dead letter and its number since the start (its row's
// key on the page).
type uiLetter struct {
	runner.DeadLetter
	N int64
}

// uiFleet is the fleet table: the query (from the page's URL) and its page.
type uiFleet struct {
	Query  uiFleetQuery
	Page   runner.FleetPage
	Pages  int
	Limits []int
}

// uiFleetQuery is the fleet table's state, kept in the page's URL.
type uiFleetQuery struct {
	Sort   string
	Filter string
	Page   int
	Limit  int
}

// uiSorts are the fleet table's sorts, as the select offers them.
var uiSorts = []struct{ Value, Label string }{
	{runner.FleetSortSite, "site, A to Z"},
	{"-" + runner.FleetSortSite, "site, Z to A"},
	{runner.FleetSortLastSeen, "longest silent first"},
	{"-" + runner.FleetSortLastSeen, "last heard first"},
	{runner.FleetSortRefused, "most refused first"},
	{"-" + runner.FleetSortRefused, "least refused first"},
	{runner.FleetSortPending, "most pending first"},
	{"-" + runner.FleetSortPending, "least pending first"},
}

// Sorts lists the sort options (the template's select).
func (uiFleetQuery) Sorts() []struct{ Value, Label string } { return uiSorts }

// parseUIFleetQuery reads the fleet table's state from the page's query
// string. The page is for people: a value out of range falls back to
// its default instead of failing the page.
func parseUIFleetQuery(q url.Values) uiFleetQuery {
	out := uiFleetQuery{Sort: runner.FleetSortSite, Page: 1, Limit: runner.DefaultFleetLimit}
	if v := q.Get("sort"); slices.Contains([]string{runner.FleetSortSite, runner.FleetSortLastSeen, runner.FleetSortRefused, runner.FleetSortPending}, strings.TrimPrefix(v, "-")) {
		out.Sort = v
	}
	out.Filter = q.Get("filter")
	if len(out.Filter) > maxFilterLen {
		out.Filter = strings.ToValidUTF8(out.Filter[:maxFilterLen], "")
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n >= 1 {
		out.Page = n
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n >= 1 && n <= runner.MaxFleetLimit {
		out.Limit = n
	}
	return out
}

func (s *Server) uiPage(w http.ResponseWriter, r *http.Request) {
	d := uiData{Site: s.site, Now: time.Now(), HasPipes: s.pipes != nil}
	if s.pipes != nil {
		st := s.pipes.Status()
		d.Site, d.Pipelines = st.Site, st.Pipelines
		letters, total := s.pipes.DeadLetters().Recent()
		d.DeadTotal = total
		for i := len(letters) - 1; i >= 0 && len(d.DeadLetters) < uiDeadLetterLimit; i-- { // newest first
			d.DeadLetters = append(d.DeadLetters, uiLetter{DeadLetter: letters[i], N: total - int64(len(letters)-1-i)})
		}
		trig, err := s.pipes.Triggers(r.Context())
		if err != nil {
			d.Problems = append(d.Problems, "trigger queues: "+oneLine(err))
		}
		d.Triggers = trig
	} else if h, ok := s.db.(storeHolder); ok && h.Store() != nil {
		st, err := h.Store().Outbox().Stats(r.Context())
		if err != nil {
			d.Problems = append(d.Problems, "outbox: "+oneLine(err))
		} else {
			d.Outbox = &st
		}
	}
	if h, ok := s.pipes.(fleetHolder); ok && h.Fleet() != nil {
		q := parseUIFleetQuery(r.URL.Query())
		page, err := h.Fleet().List(runner.FleetQuery{Sort: q.Sort, Filter: q.Filter, Page: q.Page, Limit: q.Limit})
		if err != nil {
			d.Problems = append(d.Problems, "fleet: "+oneLine(err))
		}
		limits := uiFleetLimits
		if !slices.Contains(limits, q.Limit) { // a size from the address
			limits = append(slices.Clone(limits), q.Limit)
			slices.Sort(limits)
		}
		d.Fleet = &uiFleet{Query: q, Page: page, Pages: max(1, (page.Total+q.Limit-1)/q.Limit), Limits: limits}
	}
	var buf bytes.Buffer
	if err := uiTemplate.Execute(&buf, d); err != nil {
		s.writeError(w, r, fmt.Errorf("status page: %w", err))
		return
	}
	uiHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes()) // the client went away: nothing more to do
}

// The template's formatting; ui.js formats the same way on each poll.

// uiAgo is how long before now t was: "now", "12s ago", "3m 4s ago",
// "5h 2m ago", "3d 4h ago"; "never" for the zero time.
func uiAgo(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < time.Second {
		return "now"
	}
	return uiDuration(d) + " ago"
}

// uiDuration writes d in its two largest units.
func uiDuration(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd %dh", s/86400, s%86400/3600)
}

// uiNum writes n with thousands separators.
func uiNum(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// uiBytes writes n bytes as B, KB, MB or GB (powers of 1024).
func uiBytes(n int) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
}

// uiOutboxCells are a pipeline's outbox depth, the age of its oldest
// change and its last sequence number, or dashes for a receiver.
func uiOutboxCells(now time.Time, o *pipeline.OutboxStats) struct{ Depth, Age, Last string } {
	if o == nil {
		return struct{ Depth, Age, Last string }{"–", "–", "–"}
	}
	age := "–"
	if o.Depth > 0 && !o.Oldest.IsZero() {
		age = uiDuration(max(0, now.Sub(o.Oldest)))
	}
	return struct{ Depth, Age, Last string }{uiNum(o.Depth), age, uiNum(int64(o.Last))}
}

// uiConn writes a connection state: connected, disconnected, or a dash
// when unknown.
func uiConn(c *bool) string {
	switch {
	case c == nil:
		return "–"
	case *c:
		return "connected"
	}
	return "disconnected"
}

// uiCursor is where a device's last catch-up started, as iotod devices
// writes it: how far back its cursor is, full (everything), or a dash
// when it never asked.
func uiCursor(now time.Time, d runner.DeviceSummary) string {
	switch {
	case d.FullSync:
		return "full"
	case d.Cursor == "":
		return "–"
	case !d.CursorTime.IsZero():
		return uiDuration(max(0, now.Sub(d.CursorTime))) + " back"
	}
	return d.Cursor
}

// uiRefusal is a device's last refusal with its age.
func uiRefusal(now time.Time, d runner.DeviceSummary) string {
	if d.LastRefusal == "" {
		return ""
	}
	return uiAgo(now, d.LastRefusedAt) + ": " + d.LastRefusal
}

// uiFleetURL is the page's URL for the fleet query q at page p.
func uiFleetURL(q uiFleetQuery, p int) string {
	v := url.Values{}
	if q.Sort != runner.FleetSortSite {
		v.Set("sort", q.Sort)
	}
	if q.Filter != "" {
		v.Set("filter", q.Filter)
	}
	if q.Limit != runner.DefaultFleetLimit {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if p > 1 {
		v.Set("page", strconv.Itoa(p))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// sameOrigin refuses a browser's state-changing request (any method but
// GET, HEAD and OPTIONS) from another origin with 403, before it reaches
// a handler: by Sec-Fetch-Site, or by an Origin that is not the request's
// host (net/http.CrossOriginProtection). Requests with neither header
// (curl, the CLI, api.Client) are no browser's and pass.
func (s *Server) sameOrigin(next http.Handler) http.Handler {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from := "origin " + pipeline.Quote(r.Header.Get("Origin"))
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
			from = "a " + pipeline.Quote(site) + " page (Sec-Fetch-Site)"
		}
		s.writeError(w, r, errStatus(http.StatusForbidden, CodeForbidden,
			"cross-origin request refused: %s %s from %s; the API takes state-changing requests from its own page and from clients that are no browser (the CLI, curl)",
			r.Method, r.URL.Path, from))
	}))
	return p.Handler(next)
}
