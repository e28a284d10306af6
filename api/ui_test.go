package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/runner"
)

// serveUI serves pipes (and r's local store) with the status page on or
// off, through httptest, and returns its URL.
func serveUI(t *testing.T, r *runner.Runner, pipes api.Pipelines, site string, ui bool) string {
	t.Helper()
	srv, err := api.NewServer(api.Options{DB: r.DB("local"), Pipelines: pipes, Site: site, UI: ui})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// TestUIPage: GET / is the status page, HTML with a Content-Security-
// Policy of its own origin only, showing the pipelines and, on a cloud
// worker, the fleet; its script, style and icon are the embedded files,
// cached by ETag; nothing is loaded from another origin.
func TestUIPage(t *testing.T) {
	ctx := context.Background()
	plan, _ := testPlan(t, "dev1", true) // a device and its cloud: pipelines up and ingest, a fleet
	r := startRunner(t, plan)
	base := serveUI(t, r, r, "dev1", true)
	c, err := api.NewClient(base, "")
	require.NoError(t, err)
	_, err = c.Create(ctx, "Status", db.Item{"temp": 1}, nil)
	require.NoError(t, err)
	require.NoError(t, c.Sync(ctx, 10*time.Second))

	code, h, body := get(t, base+"/")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
	csp := h.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'self'")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.Equal(t, "DENY", h.Get("X-Frame-Options"))
	assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
	assert.Equal(t, "no-store", h.Get("Cache-Control"))
	assert.Contains(t, body, `<title>iotod · dev1</title>`)
	for _, want := range []string{`<table id="pipelines"`, `<tr data-key="up">`, `<tr data-key="ingest">`,
		`<table id="triggers"`, `<table id="deadletters"`, `<table id="fleet"`, `<tr data-key="dev1">`} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, "<script>", "no inline script: the policy forbids it")
	assert.NotContains(t, body, " style=", "no inline style either")

	// The page links its three files by their content's hash.
	links := regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`).FindAllStringSubmatch(body, -1)
	require.Len(t, links, 3, "icon, style, script")
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	for _, l := range links {
		u, err := url.Parse(l[1])
		require.NoError(t, err)
		name := strings.TrimPrefix(u.Path, "/ui/")
		code, h, got := get(t, base+l[1])
		require.Equal(t, http.StatusOK, code, got)
		assert.Equal(t, types[filepath.Ext(name)], h.Get("Content-Type"), name)
		assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'self'", name)
		onDisk, err := os.ReadFile(filepath.Join("ui", name))
		require.NoError(t, err)
		assert.Equal(t, string(onDisk), got, "%s is the embedded file", name)
		etag := h.Get("ETag")
		require.NotEmpty(t, etag, name)
		assert.Equal(t, strings.Trim(etag, `"`), u.Query().Get("v"), "the link names the version")

		req, err := http.NewRequest(http.MethodGet, base+l[1], nil)
		require.NoError(t, err)
		req.Header.Set("If-None-Match", etag)
		code, _ = do(t, req)
		assert.Equal(t, http.StatusNotModified, code, name)
	}

	// Every file of the page is its own: no URL of another origin, no
	// web font, no import.
	err = fs.WalkDir(os.DirFS("ui"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join("ui", p))
		require.NoError(t, err)
		for _, bad := range []string{"http:", "https:", "//cdn", "@import", "@font-face", "url("} {
			if p == "icon.svg" && bad == "http:" {
				continue // its xmlns
			}
			assert.NotContains(t, string(b), bad, p)
		}
		return nil
	})
	require.NoError(t, err)

	for _, path := range []string{"/ui/nope.js", "/ui/index.html", "/ui/", "/ui/../go.mod"} {
		code, _, body := get(t, base+path)
		assert.Equal(t, http.StatusNotFound, code, "%s: %s", path, body)
	}
	code, body = post(t, base+"/", "{}")
	assert.Equal(t, http.StatusMethodNotAllowed, code, body)

	// The fleet's state in the address renders that page of it.
	code, _, body = get(t, base+"/?sort=-site&limit=50&filter=DEV&page=1")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `<option value="-site" selected>`)
	assert.Contains(t, body, `<option value="50" selected>`)
	assert.Contains(t, body, `value="DEV"`)
	assert.Contains(t, body, `<tr data-key="dev1">`)
	code, _, body = get(t, base+"/?filter=nothing-like-it&page=x&limit=99999&sort=color")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "No devices match.", "out-of-range values fall back to the defaults")
	assert.Contains(t, body, `<option value="100" selected>`)
}

// TestUIDevice: a device has no fleet section; a server without
// pipelines shows its outbox.
func TestUIDevice(t *testing.T) {
	plan, _ := testPlan(t, "dev2", false)
	r := startRunner(t, plan)
	code, _, body := get(t, serveUI(t, r, r, "dev2", true)+"/")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `<tr data-key="up">`)
	assert.NotContains(t, body, `id="fleet"`)

	srv, err := api.NewServer(api.Options{DB: openDB(t), Site: "bare", UI: true})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	code, _, body = get(t, hs.URL+"/")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "No pipelines are configured")
	assert.Contains(t, body, "outbox holds 0 changes")
}

// TestUIOff: without Options.UI (api.ui: false) there is no page: / and
// its files are 404s, as any unknown path.
func TestUIOff(t *testing.T) {
	plan, _ := testPlan(t, "dev3", false)
	r := startRunner(t, plan)
	base := serveUI(t, r, r, "dev3", false)
	for _, path := range []string{"/", "/ui/ui.js", "/ui/ui.css"} {
		code, h, body := get(t, base+path)
		assert.Equal(t, http.StatusNotFound, code, "%s: %s", path, body)
		assert.Equal(t, "application/json", h.Get("Content-Type"), path)
		assert.Contains(t, body, `"code":"not_found"`, path)
	}
	code, _, body := get(t, base+"/v1/status")
	assert.Equal(t, http.StatusOK, code, "the API serves on: %s", body)
}

// hostileNames renames the site and the pipelines of a runner's status.
type hostileNames struct {
	*runner.Runner
	prefix string
}

func (h hostileNames) Status() runner.Status {
	st := h.Runner.Status()
	st.Site = h.prefix + st.Site
	for i := range st.Pipelines {
		st.Pipelines[i].Name = h.prefix + st.Pipelines[i].Name
		st.Pipelines[i].LastError = h.prefix + "error"
	}
	return st
}

// TestUIEscapes: what the page shows of a site, a pipeline, a dead
// letter's reason, a device's refusal or the address is text: markup in
// it comes out escaped, never as elements or attributes.
func TestUIEscapes(t *testing.T) {
	ctx := context.Background()
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>"'`
	plan, bus := testPlan(t, "dev1", true)
	r := startRunner(t, plan)
	base := serveUI(t, r, hostileNames{Runner: r, prefix: evil}, evil, true)
	// dev9 sends a change of a model named in markup: the cloud refuses
	// it, and keeps its reason in a dead letter and in dev9's record.
	now := time.Now().UnixMilli()
	bad, err := json.Marshal(pipeline.Batch{V: pipeline.ProtocolVersion, ID: "b1", Site: "dev9", Changes: []pipeline.Change{{
		Model: "<img src=x onerror=alert(3)>", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "<b>pk</b>", SK: "x"}, Item: json.RawMessage(`{}`),
		Version: pipeline.Version{Wall: now, Origin: "dev9"}, Origin: "dev9", Time: now}}})
	require.NoError(t, err)
	require.NoError(t, bus.Publish(ctx, pipeline.ChanUp, "dev9", message.NewMessage("bad1", bad)))
	c, err := api.NewClient(base, "")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		list, err := c.Devices(ctx, api.DevicesQuery{})
		return err == nil && list.Total == 1 && list.Devices[0].Refused == 1
	}, 10*time.Second, 20*time.Millisecond)
	dead, err := c.DeadLetters(ctx, 0)
	require.NoError(t, err)
	require.NotEmpty(t, dead.DeadLetters)
	require.Contains(t, dead.DeadLetters[0].Reject.Reason+dead.DeadLetters[0].Reject.Model, "<img src=x onerror=alert(3)>",
		"the API returns the text as it is")

	code, _, body := get(t, base+"/?filter="+url.QueryEscape(`"><script>alert(4)</script>`))
	require.Equal(t, http.StatusOK, code, body)
	for _, raw := range []string{"<script>alert", "<img src=x", "<b>pk</b>", `"><script>`} {
		assert.NotContains(t, body, raw)
	}
	for _, escaped := range []string{
		// the site and the pipelines
		"&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&#34;&#39;",
		// the letter's model and key, and the refusal
		"&lt;img src=x onerror=alert(3)&gt;",
		"&lt;b&gt;pk&lt;/b&gt;",
		// the filter
		`value="&#34;&gt;&lt;script&gt;alert(4)&lt;/script&gt;"`,
	} {
		assert.Contains(t, body, escaped)
	}
	assert.Equal(t, 1, strings.Count(body, "<script"), "the page's own script tag, and none other")
}

// TestUICrossOrigin: a state-changing request a browser sends from
// another origin (a form, a fetch; with Sec-Fetch-Site, or only Origin
// in older browsers) is refused with 403 before it reaches a handler:
// nothing is replayed or written. The page's own request, and clients
// that are no browser, pass.
func TestUICrossOrigin(t *testing.T) {
	ctx := context.Background()
	trig, plan := switchPlan(t)
	r := startRunner(t, plan)
	base := serveUI(t, r, r, "dev1", true)
	c, err := api.NewClient(base, "")
	require.NoError(t, err)
	for i := range 2 {
		_, err := c.Create(ctx, "Status", db.Item{"temp": i}, nil)
		require.NoError(t, err)
	}
	require.NoError(t, c.Sync(ctx, 10*time.Second))
	dead := func() int {
		list, err := c.Triggers(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		return list[0].Dead
	}
	require.Eventually(t, func() bool { return dead() == 2 }, 10*time.Second, 10*time.Millisecond)
	trig.down.Store(false) // from now on a replay would deliver

	send := func(path, ctype, body string, headers ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", ctype)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return do(t, req)
	}
	const replay = "/v1/triggers/replay"
	const payload = `{"trigger":"ingest:switch"}`
	for _, tc := range []struct {
		name, path, ctype, body string
		headers                 []string
	}{
		{"a form posted from another site", replay, "application/x-www-form-urlencoded", "trigger=ingest%3Aswitch",
			[]string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"}},
		{"a form, from a browser without Sec-Fetch-Site", replay, "text/plain", payload, []string{"Origin", "http://evil.example"}},
		{"a fetch with Origin: http://evil.example", replay, "application/json", payload, []string{"Origin", "http://evil.example"}},
		{"a fetch from another site", replay, "application/json", payload,
			[]string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors"}},
		{"a fetch from another port of this host", replay, "application/json", payload,
			[]string{"Origin", "http://127.0.0.1:1", "Sec-Fetch-Site", "same-site"}},
		{"a write from another site", "/v1/models/Status/create", "application/json", `{"temp":99}`,
			[]string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}},
		{"a sync from another site", "/v1/sync", "application/json", `{}`, []string{"Origin", "http://evil.example"}},
	} {
		code, body := send(tc.path, tc.ctype, tc.body, tc.headers...)
		assert.Equal(t, http.StatusForbidden, code, "%s: %s", tc.name, body)
		assert.Contains(t, body, `"code":"forbidden"`, tc.name)
		assert.Contains(t, body, "cross-origin request refused", tc.name)
	}
	time.Sleep(200 * time.Millisecond) // what a replay would have delivered by now
	assert.Equal(t, 2, dead(), "nothing replayed")
	assert.Zero(t, trig.delivered.Load())
	res, err := r.DB("local").Find(ctx, "Status", db.Item{}, nil)
	require.NoError(t, err)
	assert.Len(t, res.Items, 2, "nothing written")

	// A GET from anywhere reads (the browser keeps the answer from the
	// other origin's page: no CORS header).
	req, err := http.NewRequest(http.MethodGet, base+"/v1/triggers", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	// The page's own request passes.
	code, body := send(replay, "application/json", payload, "Origin", base, "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors")
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"trigger":"ingest:switch","replayed":2}`, body)
	require.Eventually(t, func() bool { return trig.delivered.Load() == 2 && dead() == 0 }, 10*time.Second, 10*time.Millisecond)
	// And the CLI's, which names no origin.
	code, body = send("/v1/models/Status/create", "application/json", `{"temp":3}`)
	assert.Equal(t, http.StatusCreated, code, body)
}

// switchPlan is testPlan with a cloud whose ingest pipeline has a switch
// trigger, down at first, that gives up after one attempt.
func switchPlan(t *testing.T) (*switchTrigger, runner.Plan) {
	t.Helper()
	trig := &switchTrigger{}
	trig.down.Store(true)
	f := pipeline.MakeFactory(pipeline.KindTrigger, "switch", "a test trigger", func() noConfig { return noConfig{} },
		func(context.Context, pipeline.Settings, noConfig) (any, error) { return trig, nil })
	plan, _ := testPlan(t, "dev1", true)
	for i := range plan.Pipelines {
		if plan.Pipelines[i].Name == "ingest" {
			plan.Pipelines[i].Triggers = []runner.ComponentPlan{{ID: pipeline.ID{Type: "switch"}, Factory: f, Config: f.NewDefaultConfig()}}
			plan.Pipelines[i].TriggerDelivery = pipeline.TriggerDelivery{Batch: 10, Timeout: time.Second, Attempts: 1,
				RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}
		}
	}
	return trig, plan
}

// TestUIFleetOf10000: the page shows one page of a fleet of 10,000
// devices (the API's paging), by the page and size in its address.
func TestUIFleetOf10000(t *testing.T) {
	ctx := context.Background()
	plan, bus := testPlan(t, "dev1", true)
	r := startRunner(t, plan)
	base := serveUI(t, r, r, "dev1", true)
	c, err := api.NewClient(base, "")
	require.NoError(t, err)
	for i := range 10_000 { // an unreadable message from each: a device of the fleet
		site := fmt.Sprintf("d%05d", i)
		require.NoError(t, bus.Publish(ctx, pipeline.ChanUp, site, message.NewMessage(site, []byte(`{not json`))))
	}
	require.Eventually(t, func() bool {
		l, err := c.Devices(ctx, api.DevicesQuery{Limit: 1})
		return err == nil && l.Known == 10_000
	}, time.Minute, 50*time.Millisecond)
	rows := regexp.MustCompile(`<tr data-key="d\d{5}">`)

	code, _, body := get(t, base+"/")
	require.Equal(t, http.StatusOK, code, body)
	assert.Len(t, rows.FindAllString(body, -1), 100, "the default page")
	assert.Contains(t, body, "Page 1 of 100 · 10,000 devices")
	assert.Contains(t, body, `<a id="fleet-next" href="/?page=2" data-page="2">`)

	code, _, body = get(t, base+"/?limit=1000&page=10&sort=-site")
	require.Equal(t, http.StatusOK, code, body)
	keys := rows.FindAllString(body, -1)
	require.Len(t, keys, 1000)
	assert.Equal(t, `<tr data-key="d00999">`, keys[0], "the last page, Z to A")
	assert.Equal(t, `<tr data-key="d00000">`, keys[999])
	assert.Contains(t, body, "Page 10 of 10 · 10,000 devices")
	assert.Contains(t, body, `<a id="fleet-prev" href="/?limit=1000&amp;page=9&amp;sort=-site" data-page="9">`)
	assert.Contains(t, body, `<a id="fleet-next" aria-disabled="true" data-page="0">`)
}
