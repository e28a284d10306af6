package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// The status page (api/ui.go) in a real browser: headless Chromium
// (scripts/chromium.sh finds or installs it) driven through the DevTools
// protocol with chromedp, against iotod run processes.

// screenshotsEnv, set to 1, makes TestStatusPage write its screenshots
// to docs/img (tracked files: only when they should change).
const screenshotsEnv = "IOTOD_UPDATE_SCREENSHOTS"

// chromiumPath finds Chromium or Chrome as scripts/chromium.sh does. It
// skips under -short, and fails without one.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: runs iotod processes and headless Chromium")
	}
	if p := os.Getenv("IOTOD_CHROMIUM"); p != "" {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			t.Fatalf("IOTOD_CHROMIUM=%s is not an executable: unset it, or run `bash scripts/chromium.sh ensure`", p)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser",
		"/usr/bin/google-chrome", "/opt/google/chrome/chrome",
		"/Applications/Chromium.app/Contents/MacOS/Chromium", "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatal("the browser tests need Chromium or Chrome, and none was found (chromium, chromium-browser, google-chrome, $IOTOD_CHROMIUM):" +
		" run `bash scripts/chromium.sh ensure` (it installs Debian's chromium), or `make test`, which does")
	return ""
}

// browser is a tab of a headless Chromium, with the errors its pages
// wrote to the console.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"),
		chromedp.WindowSize(1400, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser and opens the tab
		t.Fatalf("start %s: %v (bash scripts/chromium.sh ensure installs Debian's chromium)", path, err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return // the test is over
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// open loads url in the tab and forgets the console so far.
func (b *browser) open(url string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("open %s: %v", url, err)
	}
	b.mu.Lock()
	b.console = nil
	b.mu.Unlock()
}

// js evaluates expr in the page (Runtime.evaluate: the page's Content-
// Security-Policy, which forbids eval, does not apply to it).
func js[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// until waits for the JavaScript expression cond to be true, up to 20s.
func (b *browser) until(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !js[bool](b, "!!("+cond+")") {
		if time.Now().After(deadline) {
			b.t.Fatalf("after 20s: %s\n(%s)\nthe page shows:\n%s\nconsole: %v", what, cond, b.pageText(), b.errors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browser) pageText() string {
	return js[string](b, `document.body ? document.body.innerText : ''`)
}

// errors are the errors and exceptions of the console since open.
func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

func (b *browser) click(sel string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
}

func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		b.t.Fatalf("type into %s: %v", sel, err)
	}
}

// screenshot saves the whole page as docs/img/name, when asked to.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if os.Getenv(screenshotsEnv) != "1" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	path := filepath.Join("..", "docs", "img", name)
	require.NoError(b.t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(b.t, os.WriteFile(path, png, 0o644))
	b.t.Logf("wrote %s (%d bytes)", path, len(png))
}

// jsCell is a JavaScript function: the text of the cell of column c in
// the row with key k of the table with id t, or null.
const jsCell = `((t, k, c) => { const td = document.querySelector('#' + t + ' tr[data-key="' + k + '"] td[data-col="' + c + '"]'); return td ? td.textContent : null; })`

func cellExpr(table, key, col string) string {
	return fmt.Sprintf("%s(%q, %q, %q)", jsCell, table, key, col)
}

// jsKeys is the data-key of each row of the table with id t, in order.
func jsKeys(table string) string {
	return fmt.Sprintf(`Array.from(document.querySelectorAll('#%s tbody tr[data-key]'), (tr) => tr.dataset.key).join(',')`, table)
}

// uiDeviceConfig is deviceConfig with a webhook trigger on the apply
// pipeline (the cloud's commands) that gives up after one attempt.
func uiDeviceConfig(t *testing.T, site, broker, hook string) string {
	return fmt.Sprintf(`site: %s
schema: %s
storage:
  local: %s
transports:
  link:
%spipelines:
  up:
    from: storage/local
    stages: [policy, {batch: {delay: 20ms, count: 500}}]
    to: transport/link
    ack_timeout: 3s
  apply:
    from: transport/link
    stages: [policy]
    to: storage/local
    triggers:
      - webhook: {url: %q, timeout: 2s, max_retries: 0}
    trigger_delivery: {attempts: 1}
api:
  listen: 127.0.0.1:0
`, site, schemaPath(t), deviceStorage(site), mqttTransport(broker, site, site, devicePassword(site)), hook)
}

// TestStatusPage: the status page in headless Chromium, against a cloud
// worker with the embedded broker and a device whose apply pipeline has a
// webhook trigger to a port nothing listens on.
//
// On the device's page: the pipelines show; writes move the up pipeline's
// last seq and throughput without a reload; a command from the cloud
// whose webhook fails shows as a dead letter with its reason and a dead
// delivery of the trigger; a page of another origin cannot replay it
// (its form post and its fetches are refused); with the webhook's
// server up, the page's Replay button queues it again, it is delivered,
// and the API reports the trigger's queue empty.
//
// On the worker's page: the fleet lists the device and two raw clients,
// one with a refused change and its reason; filtering, sorting and paging
// (by the API) work and keep their state in the address.
func TestStatusPage(t *testing.T) {
	b := newBrowser(t)
	ctx := context.Background()
	hookAddr := freeAddr(t) // closed until the replay
	r := newCloud(t, inCloud, 1, "ui-dev", "pump-7", "meter-2")
	worker := r.cloud()
	dev := startNode(t, "ui-dev", uiDeviceConfig(t, "ui-dev", r.addr, "http://"+hookAddr+"/hook"))
	r.devices["ui-dev"] = dev

	// The device's page shows its pipelines, live.
	b.open(dev.addr + "/")
	b.until("the page is live and shows the up pipeline running",
		`document.getElementById('live').dataset.state === 'ok' && `+cellExpr("pipelines", "up", "state")+` === 'running'`)
	assert.Equal(t, "apply,up", sortedKeys(js[string](b, jsKeys("pipelines"))))
	assert.Equal(t, "connected", js[string](b, cellExpr("pipelines", "up", "conn")))
	lastSeq := func() int {
		s := strings.ReplaceAll(js[string](b, cellExpr("pipelines", "up", "last")), ",", "")
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "last seq %q", s)
		return n
	}
	before := lastSeq()

	// Writes through the API move the figures; the page is not reloaded.
	js[bool](b, `(window.notReloaded = true)`)
	for i := range 20 {
		_, err := dev.client().Create(ctx, "Reading", db.Item{"deviceId": "ui-dev", "id": fmt.Sprintf("r%02d", i), "value": i}, nil)
		require.NoError(t, err)
	}
	b.until("the up pipeline's last seq moves by the 20 writes",
		fmt.Sprintf(`Number(%s.replace(/,/g, '')) >= %d`, cellExpr("pipelines", "up", "last"), before+20))
	b.until("the up pipeline shows a throughput", `/^[0-9.,]+\/s$/.test(`+cellExpr("pipelines", "up", "rate")+`) && `+
		cellExpr("pipelines", "up", "rate")+` !== '0.0/s'`)
	assert.True(t, js[bool](b, `window.notReloaded === true`), "the page updated without a reload")

	// A command from the cloud: its webhook fails (nothing listens), once
	// and for good.
	_, err := worker.client().Create(ctx, "Command", db.Item{"deviceId": "ui-dev", "id": "c1", "command": "reboot"}, nil)
	require.NoError(t, err)
	var trigger string
	eventually(t, 20*time.Second, "the device's trigger has a dead delivery", func() bool {
		list, err := dev.client().Triggers(ctx)
		require.NoError(t, err)
		if len(list) == 1 && list[0].Dead == 1 {
			trigger = list[0].Name
			return true
		}
		return false
	})
	assert.Equal(t, "apply:webhook", trigger)
	b.until("the trigger shows its dead delivery, replayable", cellExpr("triggers", trigger, "dead")+` === '1' && `+
		`!document.querySelector('#triggers button.replay[data-trigger="`+trigger+`"]').disabled`)
	b.until("the dead letter shows with its reason", cellExpr("deadletters", "1", "reason")+`?.startsWith('trigger `+trigger+`: 1 attempts: ')`)
	reason := js[string](b, cellExpr("deadletters", "1", "reason"))
	assert.Contains(t, reason, hookAddr, "the reason says what failed")
	assert.Equal(t, "Command", js[string](b, cellExpr("deadletters", "1", "model")))
	assert.Equal(t, "1", js[string](b, `document.getElementById('dead-total').textContent`))
	assert.Empty(t, b.errors(), "the page's console")
	b.screenshot("status-device.png")

	// A page of another origin tries to replay it: a fetch with JSON (its
	// preflight is not granted), a no-cors fetch and a form post (both
	// refused with 403).
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, `<!doctype html><title>evil</title>
<form id="f" method="post" action="%[1]s/v1/triggers/replay" enctype="text/plain"><input name='{"trigger":"%[2]s","x":"' value='"}'></form>
<script>
const target = %[1]q + '/v1/triggers/replay';
const body = JSON.stringify({trigger: %[2]q});
window.results = {};
Promise.all([
  fetch(target, {method: 'POST', headers: {'Content-Type': 'application/json'}, body})
    .then((r) => { results.json = 'answered ' + r.status; }, () => { results.json = 'blocked'; }),
  fetch(target, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body})
    .then(() => { results.nocors = 'sent'; }, () => { results.nocors = 'failed'; }),
]).then(() => { window.done = true; });
</script>`, dev.addr, trigger)
	}))
	t.Cleanup(evil.Close)
	b.open(evil.URL)
	b.until("the other origin's fetches are done", `window.done === true`)
	assert.Equal(t, "blocked", js[string](b, `results.json`), "the JSON fetch needs a preflight, which the API does not grant")
	assert.Equal(t, "sent", js[string](b, `results.nocors`), "a no-cors fetch goes out (its answer is opaque)")
	js[bool](b, `(document.getElementById('f').submit(), true)`)
	b.until("the form post lands on the API's refusal", `document.body && document.body.innerText.includes('cross-origin request refused')`)
	time.Sleep(time.Second) // what a replay would do: deliver again, fail at once, and dead-letter it
	list, err := dev.client().Triggers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, list[0].Dead, "nothing replayed")
	letters, err := dev.client().DeadLetters(ctx, 0)
	require.NoError(t, err)
	assert.EqualValues(t, 1, letters.Total, "no new attempt, no new dead letter")

	// The webhook's server is up: the page's Replay button delivers it.
	hooks := make(chan string, 10)
	ln, err := net.Listen("tcp", hookAddr)
	require.NoError(t, err)
	hookSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hooks <- string(body)
	})}
	go func() { _ = hookSrv.Serve(ln) }()
	t.Cleanup(func() { _ = hookSrv.Close() })
	b.open(dev.addr + "/")
	sel := `#triggers button.replay[data-trigger="` + trigger + `"]`
	b.until("the Replay button is enabled", `document.querySelector('`+sel+`') && !document.querySelector('`+sel+`').disabled`)
	b.click(sel)
	b.until("the page says what it replayed", `document.getElementById('replay-result').textContent === 'Queued 1 dead delivery of `+trigger+` again.'`)
	select {
	case body := <-hooks:
		assert.Contains(t, body, `"command#c1"`, "the replayed delivery is the command's")
	case <-time.After(20 * time.Second):
		t.Fatal("the webhook got nothing after the replay")
	}
	eventually(t, 20*time.Second, "the API reports the trigger's queue empty", func() bool {
		list, err := dev.client().Triggers(ctx)
		require.NoError(t, err)
		return list[0].Dead == 0 && list[0].Queued == 0
	})
	b.until("the page shows no dead delivery left", cellExpr("triggers", trigger, "dead")+` === '0' && document.querySelector('`+sel+`').disabled`)
	letters, err = dev.client().DeadLetters(ctx, 0)
	require.NoError(t, err)
	assert.EqualValues(t, 1, letters.Total, "the letter stays as history; the delivery did not fail again")
	assert.Empty(t, b.errors(), "the page's console")

	// The worker's fleet: the device, and two raw clients, one of which
	// writes a reading of another device's, refused.
	now := time.Now().UnixMilli()
	pump := dialRaw(t, r.addr, "pump-7")
	require.Empty(t, pump.send(batchOf("pump-7", reading("pump-7", "pump-7", "p1", versionAt("pump-7", now, 0), pipeline.OpCreate, 7))).Rejected)
	meter := dialRaw(t, r.addr, "meter-2")
	ack := meter.send(batchOf("meter-2", reading("meter-2", "meter-2", "m1", versionAt("meter-2", now, 0), pipeline.OpCreate, 2),
		reading("meter-2", "pump-7", "m2", versionAt("meter-2", now, 1), pipeline.OpCreate, 3)))
	require.Len(t, ack.Rejected, 1, "a reading of pump-7 from meter-2")
	b.open(worker.addr + "/")
	b.until("the fleet lists the three devices, by site", jsKeys("fleet")+` === 'meter-2,pump-7,ui-dev'`)
	b.until("meter-2's refusal shows", cellExpr("fleet", "meter-2", "refused")+` === '1' && `+cellExpr("fleet", "meter-2", "refusal")+` !== ''`)
	assert.Equal(t, "connected", js[string](b, cellExpr("fleet", "ui-dev", "conn")))
	assert.Regexp(t, `^(now|\d+s ago)$`, js[string](b, cellExpr("fleet", "ui-dev", "seen")))
	assert.Equal(t, "20", js[string](b, cellExpr("fleet", "ui-dev", "changes")), "the device's 20 readings")
	assert.Equal(t, "3", js[string](b, `document.getElementById('fleet-count').textContent`))
	b.until("the worker's ingest shows a throughput (two polls)", `/^[0-9.,]+\/s$/.test(`+cellExpr("pipelines", "ingest", "rate")+`)`)
	b.screenshot("status-cloud.png")

	// Filter, sort, page: each a new page from the API, kept in the address.
	b.typeInto(`#fleet-form input[name="filter"]`, "PUMP")
	b.until("the filter keeps pump-7", jsKeys("fleet")+` === 'pump-7' && location.search === '?filter=PUMP'`)
	js[bool](b, `(() => { const f = document.querySelector('#fleet-form input[name="filter"]'); f.value = ''; f.dispatchEvent(new Event('input')); return true; })()`)
	b.until("no filter: the three again", jsKeys("fleet")+` === 'meter-2,pump-7,ui-dev' && location.search === ''`)
	b.click(`#fleet button.sort[data-sort="site"]`)
	b.until("site, Z to A", jsKeys("fleet")+` === 'ui-dev,pump-7,meter-2' && location.search === '?sort=-site'`)
	assert.Equal(t, "descending", js[string](b, `document.querySelector('#fleet th[data-col="site"]').getAttribute('aria-sort')`))
	b.click(`#fleet button.sort[data-sort="refused"]`)
	b.until("the most refused first", `(`+jsKeys("fleet")+`).startsWith('meter-2,') && location.search === '?sort=refused'`)
	b.open(worker.addr + "/?limit=1")
	b.until("a page of one device", jsKeys("fleet")+` === 'meter-2' && document.getElementById('fleet-pageinfo').textContent.startsWith('Page 1 of 3')`)
	b.click(`#fleet-next`)
	b.until("the next page", jsKeys("fleet")+` === 'pump-7' && document.getElementById('fleet-pageinfo').textContent.startsWith('Page 2 of 3') && location.search === '?limit=1&page=2'`)
	b.click(`#fleet-next`)
	b.until("the last page", jsKeys("fleet")+` === 'ui-dev' && document.querySelector('#fleet-next').getAttribute('aria-disabled') === 'true'`)
	assert.Empty(t, b.errors(), "the page's console")
}

// sortedKeys sorts a comma-separated list.
func sortedKeys(s string) string {
	parts := strings.Split(s, ",")
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// TestStatusPageSwitch: iotod run serves the page by default, and not
// with api.ui: false (a 404, as any unknown path); the API is the same.
func TestStatusPageSwitch(t *testing.T) {
	for _, tc := range []struct {
		ui   string
		want int
	}{{"", http.StatusOK}, {"  ui: false\n", http.StatusNotFound}} {
		n := startNode(t, "ui-switch", fmt.Sprintf("site: ui-switch\nschema: %s\nstorage:\n  local: %s\napi:\n  listen: 127.0.0.1:0\n%s",
			schemaPath(t), deviceStorage("ui-switch"), tc.ui))
		for path, want := range map[string]int{"/": tc.want, "/ui/ui.js": tc.want, "/v1/status": http.StatusOK} {
			resp, err := http.Get(n.addr + path)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, resp.Body.Close())
			require.NoError(t, err)
			assert.Equal(t, want, resp.StatusCode, "api.ui %q: %s: %s", tc.ui, path, body)
			if path == "/" && want == http.StatusOK {
				assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
				assert.Contains(t, string(body), "<title>iotod · ui-switch</title>")
			}
		}
		n.stop()
	}
}
