package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// TestHostileDevice: a device with valid credentials (dev-1, a raw MQTT
// client logged in as the device) sends what it must not be able to damage
// the cloud with, on its own up and sync topics, while a good device
// (dev-2, an `iotod run` process) keeps writing. Each class is a subtest
// on a rig of its own (a cloud worker, dev-2, the hostile client), so one
// class that wedges the worker does not hide the others:
//
//	a-batch-ids:  ids that are not valid UTF-8, 10 KB long, or hold '/',
//	              '+', '#', NUL, a newline: nothing stored, nothing raw in
//	              the worker's log, the worker keeps serving, also after a
//	              restart of the worker process.
//	b-keys:       keys and types that do not match the item, the model or
//	              the sender: each rejected in the ack, nothing changed.
//	c-clock:      versions far ahead, at the limits, zero, of another
//	              origin: each rejected; the cloud's clock did not move and
//	              dev-2's writes still win.
//	d-size:       a 100 KB model name or key: the ack comes back with
//	              bounded reasons, the dead-letter file stays bounded; a
//	              2 MB publish is refused and the worker's memory does not
//	              jump.
//	e-cloud-flags: a device-sent synced marker or catch-up batch: rejected
//	              in the ack, nothing applied.
//	f-sync-flood: 300 full sync requests from dev-1: dev-2's `iotod sync`
//	              still completes in seconds.
//
// Every class ends the same way: `iotod sync` on dev-2 succeeds within
// 10 s and every good change of dev-2 is in the cloud as on the device;
// dev-1's readings in the cloud are exactly its good ones. The payloads
// that are plain data are in testdata/hostile/.
func TestHostileDevice(t *testing.T) {
	iotodBin(t) // skips under -short before anything starts
	forBrokers(t, func(t *testing.T, kind brokerKind) {
		t.Run("a-batch-ids", func(t *testing.T) { hostileBatchIDs(t, kind) })
		t.Run("b-keys", func(t *testing.T) { hostileKeys(t, newHostile(t, kind)) })
		t.Run("c-clock", func(t *testing.T) { hostileClock(t, newHostile(t, kind)) })
		t.Run("d-size", func(t *testing.T) { hostileSize(t, newHostile(t, kind)) })
		t.Run("e-cloud-flags", func(t *testing.T) { hostileFlags(t, newHostile(t, kind)) })
		t.Run("f-sync-flood", func(t *testing.T) { hostileFlood(t, newHostile(t, kind)) })
	})
}

// a: batch ids that must never reach a topic, a header or a log. The
// finding: such a batch stopped the cloud receiving from every device,
// and was delivered again on every reconnect. Each id goes to a rig of
// its own, so one that wedges the worker does not hide the others; then
// all of them go to one rig whose worker process is restarted.
func hostileBatchIDs(t *testing.T, kind brokerKind) {
	cases := (&hostile{}).cases(t, "batch-ids.json")
	send := func(t *testing.T, h *hostile, i int, c hostileCase) {
		t.Helper()
		change := reading("dev-1", "dev-1", fmt.Sprintf("a-%d", i), h.version(), pipeline.OpCreate, 1)
		payload := bytes.Replace(c.payload, []byte("CHANGE"), mustJSON(t, change), 1)
		code, err := h.bad.publish(topic("dev-1", "up"), payload)
		t.Logf("%s: %d byte payload: PUBACK %#x, err %v", c.Name, len(payload), code, err)
		if !h.bad.alive() {
			h.redial(t)
		}
	}
	for i, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			h := newHostile(t, kind)
			before := h.state(t)
			send(t, h, i, c)
			h.serving(t, 5*time.Second)
			h.unchanged(t, before, "after "+c.Name)
			cleanLog(t, h.worker)
		})
	}
	t.Run("all, then a restart of the worker", func(t *testing.T) {
		h := newHostile(t, kind)
		before := h.state(t)
		for i, c := range cases {
			send(t, h, i, c)
		}
		// Whatever the broker still holds for the worker is delivered
		// again after the restart, and must not stop it.
		h.worker.restart()
		h.redial(t)
		if h.serving(t, 15*time.Second) {
			h.unchanged(t, before, "after the restart")
		}
		cleanLog(t, h.worker)
		h.finish(t)
	})
}

// cleanLog checks nothing of the hostile ids reached the worker's log
// unchecked: no line forged by an id's newline, no invalid UTF-8 written
// raw, no 10 KB id repeated whole.
func cleanLog(t *testing.T, n *node) {
	t.Helper()
	text := n.logText()
	for _, line := range strings.Split(text, "\n") {
		assert.False(t, strings.HasPrefix(line, "level=ERROR msg=forged"), "%s: a log line forged by a batch id", n.name)
	}
	assert.NotContains(t, text, "\xff\xfe\xfd", "%s: invalid UTF-8 written raw to the log", n.name)
	assert.NotContains(t, text, strings.Repeat("A", 1024), "%s: a 10 KB id repeated in the log", n.name)
}

// b: key tampering. Each case is one change in a batch of its own, with a
// current version (so it would win if applied).
func hostileKeys(t *testing.T, h *hostile) {
	for _, c := range h.cases(t, "keys.json") {
		t.Run(c.Name, func(t *testing.T) {
			before := h.state(t)
			h.rejectedInAck(t, c)
			h.syncPoint(t)
			h.unchanged(t, before, "after "+c.Name)
		})
	}
	// dev-2 can still write its own items.
	ctx := context.Background()
	_, err := h.dev2.client().Update(ctx, "Reading", db.Item{"deviceId": "dev-2", "id": "own2", "value": 99}, nil)
	require.NoError(t, err)
	_, err = h.dev2.client().Update(ctx, "Setting", db.Item{"deviceId": "dev-2", "name": "mode", "value": "dev2-again"}, nil)
	require.NoError(t, err)
	h.dev2.sync(10 * time.Second)
	cloud := h.worker.client()
	assert.Equal(t, "99", fmt.Sprint(get(t, cloud, "Reading", db.Item{"deviceId": "dev-2", "id": "own2"})["value"]), "dev-2's own reading, updated")
	assert.Equal(t, "dev2-again", get(t, cloud, "Setting", db.Item{"deviceId": "dev-2", "name": "mode"})["value"], "dev-2's own setting, updated")
	h.finish(t)
}

// c: clock attacks. Afterwards the cloud's own writes carry its real
// clock, and dev-2's writes still win over the cloud's earlier ones.
func hostileClock(t *testing.T, h *hostile) {
	for _, c := range h.cases(t, "clock.json") {
		t.Run(c.Name, func(t *testing.T) {
			before := h.state(t)
			h.rejectedInAck(t, c)
			h.syncPoint(t)
			h.unchanged(t, before, "after "+c.Name)
		})
	}
	ctx := context.Background()
	cloud, dev2 := h.worker.client(), h.dev2.client()
	recent := func(what string, it db.Item) {
		t.Helper()
		v := version(it)
		at := time.UnixMilli(v.Wall)
		assert.WithinDuration(t, time.Now(), at, time.Minute, "%s: version %s (%s) is not within a minute of now", what, v, at.UTC())
	}
	// The cloud writes: its clock did not move.
	_, err := cloud.Create(ctx, "Command", db.Item{"deviceId": "dev-2", "id": "clk-cmd", "command": "set"}, nil)
	require.NoError(t, err)
	recent("the cloud's new Command", hidden(t, cloud, "Command", db.Item{"deviceId": "dev-2", "id": "clk-cmd"}))
	_, err = cloud.Update(ctx, "Setting", db.Item{"deviceId": "dev-2", "name": "mode", "value": "cloud-after"}, nil)
	require.NoError(t, err)
	recent("the cloud's Setting update", hidden(t, cloud, "Setting", db.Item{"deviceId": "dev-2", "name": "mode"}))
	eventually(t, 10*time.Second, "the cloud's Setting update reaches dev-2", func() bool {
		it, err := dev2.Get(ctx, "Setting", db.Item{"deviceId": "dev-2", "name": "mode"}, nil)
		return err == nil && it["value"] == "cloud-after"
	})
	// dev-2 writes after it: its write wins in the cloud.
	_, err = dev2.Update(ctx, "Setting", db.Item{"deviceId": "dev-2", "name": "mode", "value": "dev2-after"}, nil)
	require.NoError(t, err)
	_, err = dev2.Create(ctx, "Reading", db.Item{"deviceId": "dev-2", "id": "good-clock", "value": 1}, nil)
	require.NoError(t, err)
	h.dev2.sync(10 * time.Second)
	set := hidden(t, cloud, "Setting", db.Item{"deviceId": "dev-2", "name": "mode"})
	assert.Equal(t, "dev2-after", set["value"], "dev-2's later write wins")
	recent("dev-2's Setting in the cloud", set)
	recent("dev-2's new Reading in the cloud", hidden(t, cloud, "Reading", db.Item{"deviceId": "dev-2", "id": "good-clock"}))
	h.finish(t)
}

// d: size. A huge model name or key still gets an ack, with short
// reasons, and short dead letters; a 2 MB publish is refused and does
// not blow up the worker.
func hostileSize(t *testing.T, h *hostile) {
	big := func(id string, mutate func(c *pipeline.Change)) *pipeline.Batch {
		c := reading("dev-1", "dev-1", id, h.version(), pipeline.OpCreate, 1)
		mutate(&c)
		return batchOf("dev-1", c)
	}
	cases := []struct {
		name string
		b    *pipeline.Batch
	}{
		{"a 100 KB model name", big("big-model", func(c *pipeline.Change) { c.Model = strings.Repeat("M", 100*1024) })},
		// The key is in the change and in its item (and the sk's id in
		// the item too): 40 KB each keeps the batch under 128 KB.
		{"a 40 KB pk", big("big-pk", func(c *pipeline.Change) {
			c.Key.PK = "reading#dev-1" + strings.Repeat("k", 40*1024)
			c.Item = setAttr(t, c.Item, "pk", c.Key.PK)
		})},
		{"a 40 KB sk", big("big-sk", func(c *pipeline.Change) {
			c.Key.SK = "reading#" + strings.Repeat("s", 40*1024)
			c.Item = setAttr(t, setAttr(t, c.Item, "sk", c.Key.SK), "id", strings.Repeat("s", 40*1024))
		})},
		{"a 100 KB model name, 5 times more", big("big-model-2", func(c *pipeline.Change) { c.Model = strings.Repeat("N", 100*1024) })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.state(t)
			times := 1
			if strings.Contains(c.name, "5 times") {
				times = 5
			}
			for range times {
				c.b.ID = ulid.Make().String()
				if !h.rejectedInAck(t, hostileCase{Name: c.name, payload: mustJSON(t, c.b), id: c.b.ID, changes: 1}) {
					break // no ack: once is enough to tell
				}
			}
			h.syncPoint(t)
			h.unchanged(t, before, "after "+c.name)
		})
	}
	t.Run("the dead-letter file stays bounded", func(t *testing.T) {
		path := filepath.Join(h.worker.dir, "data", "deadletters.jsonl")
		eventually(t, 10*time.Second, "the worker's dead letters are written", func() bool {
			_, err := os.Stat(path)
			return err == nil
		})
		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		st, err := f.Stat()
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 4<<20)
		lines, longest := 0, 0
		for sc.Scan() {
			lines++
			longest = max(longest, len(sc.Bytes()))
			var l map[string]any
			assert.NoError(t, json.Unmarshal(sc.Bytes(), &l), "line %d is a JSON letter", lines)
		}
		require.NoError(t, sc.Err())
		t.Logf("dead letters: %d lines, %d bytes, the longest %d bytes", lines, st.Size(), longest)
		assert.GreaterOrEqual(t, lines, 8, "every refused change is a dead letter")
		assert.LessOrEqual(t, longest, 16*1024, "each letter is bounded")
		assert.Less(t, st.Size(), int64(256*1024), "8 letters of 100 KB inputs take little room")
	})
	t.Run("a 2 MB publish", func(t *testing.T) {
		rss0 := rssKB(t, h.worker)
		for i := range 3 {
			c := reading("dev-1", "dev-1", fmt.Sprintf("huge-%d", i), h.version(), pipeline.OpCreate, 1)
			c.Item = setAttr(t, c.Item, "note", strings.Repeat("x", 2<<20))
			b := batchOf("dev-1", c)
			before := h.state(t)
			res := wirePublish(t, h.r.addr, "dev-1", fmt.Sprintf("dev-1-huge-%d", i), topic("dev-1", "up"), mustJSON(t, b))
			t.Logf("%s: a %d MB publish: %s", h.kind, 2, res)
			if h.kind == inCloud {
				assert.True(t, res.refused(), "the embedded broker refuses a packet over its maximum size: %s", res)
			}
			if !res.refused() { // delivered: the worker must refuse it whole
				if a, ok := h.bad.maybeAck(b.ID, 10*time.Second); ok {
					assert.Zero(t, a.Applied, "a 2 MB batch applied")
					t.Logf("%s: the 2 MB batch was acked: %d rejected, reason %.200q", h.kind, len(a.Rejected), firstReason(a))
				}
			}
			h.syncPoint(t)
			h.unchanged(t, before, "after the 2 MB publish")
		}
		h.serving(t, 5*time.Second)
		rss1 := rssKB(t, h.worker)
		t.Logf("worker RSS %d MB before, %d MB after three 2 MB publishes", rss0/1024, rss1/1024)
		assert.Less(t, rss1-rss0, int64(100*1024), "the worker's RSS grew by %d MB", (rss1-rss0)/1024)
	})
	h.finish(t)
}

// e: flags only the cloud may send: refused in the ack, nothing applied.
func hostileFlags(t *testing.T, h *hostile) {
	for _, c := range h.cases(t, "flags.json") {
		t.Run(c.Name, func(t *testing.T) {
			before := h.state(t)
			h.rejectedInAck(t, c)
			h.syncPoint(t)
			h.unchanged(t, before, "after "+c.Name)
		})
	}
	h.finish(t)
}

// f: 300 full sync requests from dev-1 while dev-2 syncs (`iotod sync`
// asks the cloud for a catch-up and waits for it).
func hostileFlood(t *testing.T, h *hostile) {
	ctx := context.Background()
	cloud := h.worker.client()
	// Give every full catch-up of dev-1 something to send: 3000 Commands.
	const commands = 3000
	for i := 0; i < commands; i += 100 {
		ops := make([]db.WriteOp, 0, 100)
		for j := i; j < i+100; j++ {
			ops = append(ops, db.WriteOp{Op: pipeline.OpCreate, Model: "Command",
				Item: db.Item{"deviceId": "dev-1", "id": fmt.Sprintf("flood-%04d", j), "command": "set", "n": j}})
		}
		res, err := cloud.Batch(ctx, ops)
		require.NoError(t, err)
		for _, r := range res {
			require.Empty(t, r.Error, "create a Command")
		}
	}
	// The hostile client acks them as a device would, then leaves: the
	// catch-ups its flood asks for go to nobody.
	eventually(t, time.Minute, "dev-1 acked every Command", func() bool { return inFlight(t, h.worker, "down") == 0 })
	h.bad.close()
	flood := dialHostile(t, h.r.addr, "dev-1", "dev-1-flood", false)

	timeSync := func() (time.Duration, error) {
		_, err := h.dev2.client().Create(ctx, "Reading", db.Item{"deviceId": "dev-2", "id": "good-" + ulid.Make().String(), "value": 1}, nil)
		require.NoError(t, err)
		t0 := time.Now()
		out, err := h.dev2.cli("sync", "--timeout", "30s")
		if err == nil && strings.TrimSpace(out) != "synced" {
			err = fmt.Errorf("iotod sync printed %q", out)
		}
		return time.Since(t0), err
	}
	base, err := timeSync()
	require.NoError(t, err, "iotod sync without a flood")

	answered := func() int { return len(catchUpSentTo("dev-1").FindAllStringIndex(h.worker.logText(), -1)) }
	served := answered()
	t0 := time.Now()
	for range 300 {
		req, _ := json.Marshal(pipeline.SyncRequest{V: pipeline.ProtocolVersion, ID: ulid.Make().String(), Full: true})
		code, err := flood.publish(topic("dev-1", "sync"), req)
		if err != nil || code >= 0x80 {
			t.Logf("a sync request refused: PUBACK %#x, %v", code, err)
			break
		}
	}
	published := time.Since(t0)
	flooded, err := timeSync()
	t.Logf("%s: iotod sync on dev-2 took %s without a flood, %s after 300 full sync requests from dev-1 (published in %s); err %v",
		h.kind, base.Round(time.Millisecond), flooded.Round(time.Millisecond), published.Round(time.Millisecond), err)
	assert.NoError(t, err, "iotod sync on dev-2 during the flood")
	assert.Less(t, flooded, 10*time.Second, "dev-2's sync waited behind dev-1's flood")
	time.Sleep(time.Second)
	t.Logf("%s: the worker answered %d of dev-1's full sync requests so far", h.kind, answered()-served)
	h.finish(t)
}

// catchUpSentTo matches the worker's log line of a catch-up answered to
// site.
func catchUpSentTo(site string) *regexp.Regexp {
	return regexp.MustCompile(`msg="catch-up sent" .*\bsite=` + regexp.QuoteMeta(site) + `\b`)
}

// hostile is one class's rig: a cloud worker (the embedded broker in its
// process, or mosquitto), dev-2 as an `iotod run` device writing in the
// background, and the hostile client logged in as dev-1.
type hostile struct {
	t      *testing.T
	kind   brokerKind
	r      *rig
	worker *node
	dev2   *node
	bad    *hclient

	mu      sync.Mutex
	now     int64 // the clock of the case files, set when one is read
	seq     uint32
	dev1    map[string]bool // dev-1's readings the cloud must hold
	okCount int

	bg *bgWriter
}

// newHostile starts the rig and writes the items the cases aim at:
// dev-1's Reading own1, dev-2's Reading own2 and Setting mode, the
// cloud's Commands c1 (dev-1) and c2 (dev-2) and Notice n1.
func newHostile(t *testing.T, kind brokerKind) *hostile {
	r := newCloud(t, kind, 1, "dev-1", "dev-2")
	h := &hostile{t: t, kind: kind, r: r, worker: r.cloud(), now: time.Now().UnixMilli(), dev1: map[string]bool{}}
	h.dev2 = r.addDevice("dev-2")
	h.bad = dialHostile(t, r.addr, "dev-1", "dev-1-hostile", true)
	ctx := context.Background()

	a := h.bad.send(t, batchOf("dev-1", reading("dev-1", "dev-1", "own1", h.version(), pipeline.OpCreate, 1)))
	require.Equal(t, 1, a.Applied, "dev-1's own reading: %+v", a)
	h.dev1["reading#dev-1|reading#own1"] = true
	dev2, cloud := h.dev2.client(), h.worker.client()
	_, err := dev2.Create(ctx, "Reading", db.Item{"deviceId": "dev-2", "id": "own2", "value": 2}, nil)
	require.NoError(t, err)
	_, err = dev2.Create(ctx, "Setting", db.Item{"deviceId": "dev-2", "name": "mode", "value": "dev2"}, nil)
	require.NoError(t, err)
	for _, w := range []struct {
		model string
		item  db.Item
	}{
		{"Command", db.Item{"deviceId": "dev-1", "id": "c1", "command": "reboot"}},
		{"Command", db.Item{"deviceId": "dev-2", "id": "c2", "command": "reboot"}},
		{"Notice", db.Item{"id": "n1", "text": "to all"}},
	} {
		_, err := cloud.Create(ctx, w.model, w.item, nil)
		require.NoError(t, err)
	}
	h.dev2.sync(30 * time.Second)
	eventually(t, 30*time.Second, "the cloud's Command and Notice reach dev-2", func() bool {
		return count(t, dev2, "Command", db.Item{"deviceId": "dev-2"}) == 1 && count(t, dev2, "Notice", nil) == 1
	})
	h.bg = startBG(t, h.dev2)
	return h
}

// version is a current version of dev-1, unique in the run: newer than
// anything written before, so a change at it would win if applied.
func (h *hostile) version() pipeline.Version {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	return versionAt("dev-1", time.Now().UnixMilli(), h.seq)
}

// hostileCase is one payload of a case file, expanded.
type hostileCase struct {
	Name  string          `json:"name"`
	Note  string          `json:"note"`
	Batch json.RawMessage `json:"batch"`
	// Raw is the payload's text; \xNN in it stands for the byte NN.
	Raw string `json:"raw"`

	payload []byte
	id      string // the batch's id, when it has one
	changes int
}

var hexEscapes = regexp.MustCompile(`\\x[0-9a-fA-F]{2}`)

// cases reads a case file of testdata/hostile, expanding its template.
func (h *hostile) cases(t *testing.T, file string) []hostileCase {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", "hostile", file))
	require.NoError(t, err)
	h.mu.Lock()
	h.now = time.Now().UnixMilli() // newer than every item written so far
	h.mu.Unlock()
	tmpl, err := template.New(file).Funcs(template.FuncMap{
		"now":    func() int64 { return h.now },
		"at":     func() string { return time.UnixMilli(h.now).UTC().Format("2006-01-02T15:04:05.000Z") },
		"seq":    func() uint32 { return h.version().Counter },
		"ulid":   func() string { return ulid.Make().String() },
		"repeat": strings.Repeat,
	}).Parse(string(text))
	require.NoError(t, err, file)
	var out bytes.Buffer
	require.NoError(t, tmpl.Execute(&out, nil), file)
	var cases []hostileCase
	require.NoError(t, json.Unmarshal(out.Bytes(), &cases), "%s, expanded:\n%.2000s", file, out.String())
	require.NotEmpty(t, cases, file)
	for i := range cases {
		c := &cases[i]
		switch {
		case len(c.Batch) > 0:
			var compact bytes.Buffer
			require.NoError(t, json.Compact(&compact, c.Batch))
			c.payload = compact.Bytes()
			var b pipeline.Batch
			require.NoError(t, json.Unmarshal(c.payload, &b), "%s: %s", file, c.Name)
			c.id, c.changes = b.ID, len(b.Changes)
		case c.Raw != "":
			c.payload = hexEscapes.ReplaceAllFunc([]byte(c.Raw), func(m []byte) []byte {
				b, _ := strconv.ParseUint(string(m[2:]), 16, 8)
				return []byte{byte(b)}
			})
		default:
			t.Fatalf("%s: %s: neither batch nor raw", file, c.Name)
		}
	}
	return cases
}

// rejectedInAck sends c and checks its ack rejects every change, each
// with a reason of at most 1 KB; false if no ack came.
func (h *hostile) rejectedInAck(t *testing.T, c hostileCase) bool {
	t.Helper()
	h.bad.sendPayload(t, c.payload)
	a, ok := h.bad.maybeAck(c.id, 10*time.Second)
	if !assert.True(t, ok, "%s: no ack for batch %.40s within 10s", c.Name, c.id) {
		return false
	}
	t.Logf("ack: applied %d, %d rejected: %.300q", a.Applied, len(a.Rejected), firstReason(a))
	assert.Zero(t, a.Applied, "%s: applied", c.Name)
	assert.Len(t, a.Rejected, c.changes, "%s: every change rejected", c.Name)
	h.checkReasons(t, a)
	return true
}

func (h *hostile) checkReasons(t *testing.T, a pipeline.Ack) {
	t.Helper()
	for i, rj := range a.Rejected {
		assert.NotEmpty(t, rj.Reason, "rejection %d has a reason", i)
		assert.LessOrEqual(t, len(rj.Reason), 1024, "rejection %d: a %d byte reason", i, len(rj.Reason))
	}
}

func firstReason(a pipeline.Ack) string {
	if len(a.Rejected) == 0 {
		return ""
	}
	return a.Rejected[0].Reason
}

// syncPoint sends a good change of dev-1 and waits for its ack: the
// worker has handled everything dev-1 sent before. False if no ack came.
func (h *hostile) syncPoint(t *testing.T) bool {
	t.Helper()
	h.mu.Lock()
	h.okCount++
	id := fmt.Sprintf("ok-%03d", h.okCount)
	h.mu.Unlock()
	b := batchOf("dev-1", reading("dev-1", "dev-1", id, h.version(), pipeline.OpCreate, 1))
	h.bad.sendPayload(t, mustJSON(t, b))
	a, ok := h.bad.maybeAck(b.ID, 10*time.Second)
	if assert.True(t, ok, "the worker does not answer dev-1's good batch within 10s") {
		assert.Equal(t, 1, a.Applied, "dev-1's good change: %+v", a)
	}
	h.mu.Lock()
	h.dev1["reading#dev-1|reading#"+id] = true
	h.mu.Unlock()
	return ok
}

// serving checks the worker applies dev-2's next change within d and
// answers dev-1's good batch; false if it does not.
func (h *hostile) serving(t *testing.T, d time.Duration) bool {
	t.Helper()
	ctx := context.Background()
	id := "good-" + ulid.Make().String()
	_, err := h.dev2.client().Create(ctx, "Reading", db.Item{"deviceId": "dev-2", "id": id, "value": 1}, nil)
	require.NoError(t, err)
	t0 := time.Now()
	cloud := h.worker.client()
	deadline := t0.Add(d)
	for {
		if _, err := cloud.Get(ctx, "Reading", db.Item{"deviceId": "dev-2", "id": id}, nil); err == nil {
			t.Logf("dev-2's good change applied in the cloud after %s", time.Since(t0).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("dev-2's good change is not in the cloud after %s: the worker stopped serving", d)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return h.syncPoint(t)
}

// finish: dev-2's `iotod sync` succeeds within 10 s, every good change of
// dev-2 is in the cloud as on the device, and dev-1's readings in the
// cloud are exactly its good ones, own1 unchanged.
func (h *hostile) finish(t *testing.T) {
	t.Helper()
	h.bg.halt()
	t.Logf("dev-2 wrote %d readings in the background", h.bg.written())
	t0 := time.Now()
	out, err := h.dev2.cli("sync", "--timeout", "10s")
	took := time.Since(t0)
	if err != nil || strings.TrimSpace(out) != "synced" {
		t.Errorf("iotod sync on dev-2 after the hostile class: %v %q (after %s)", err, out, took)
		return
	}
	t.Logf("iotod sync on dev-2 after the hostile class: %s", took.Round(time.Millisecond))
	cloud := h.worker.client()
	d2 := db.Item{"deviceId": "dev-2"}
	sameItems(t, "dev-2's readings, device and cloud", items(t, h.dev2.client(), "Reading", d2), items(t, cloud, "Reading", d2))
	sameItems(t, "dev-2's settings, device and cloud", items(t, h.dev2.client(), "Setting", d2), items(t, cloud, "Setting", d2))
	got := items(t, cloud, "Reading", db.Item{"deviceId": "dev-1"})
	h.mu.Lock()
	want := keysOfSet(h.dev1)
	h.mu.Unlock()
	assert.ElementsMatch(t, want, keysOf(got), "dev-1's readings in the cloud: its good ones only")
	if own, ok := got["reading#dev-1|reading#own1"]; ok {
		assert.Equal(t, "1", fmt.Sprint(own["value"]), "dev-1's own1 unchanged")
	}
}

func keysOfSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The cloud's models and the partitions the cases touch: state reads
// every item of every model in each, so an item stored under another
// model's key is seen too.
var (
	hostileModels = []string{"Reading", "Command", "Setting", "Notice", "Scratch", "Report"}
	hostilePKs    = []string{"reading#dev-1", "reading#dev-2", "reading#dev-1#x", "command#dev-1", "command#dev-2",
		"setting#dev-1", "setting#dev-2", "notice#", "scratch#", "report#"}
)

// state is every item in the cloud the cases could touch, keyed by
// "Model pk|sk", without the good writes that go on meanwhile (dev-2's
// background and good readings, dev-1's ok readings).
func (h *hostile) state(t *testing.T) map[string]db.Item {
	t.Helper()
	cloud := h.worker.client()
	out := map[string]db.Item{}
	for _, m := range hostileModels {
		for _, pk := range hostilePKs {
			for k, it := range items(t, cloud, m, db.Item{"pk": pk, "sk": map[string]any{"begins": ""}}) {
				if m == "Reading" && (strings.HasPrefix(k, "reading#dev-2|reading#bg-") ||
					strings.HasPrefix(k, "reading#dev-2|reading#good-") || strings.HasPrefix(k, "reading#dev-1|reading#ok-")) {
					continue
				}
				out[m+" "+k] = it
			}
		}
	}
	return out
}

// unchanged checks the cloud holds what it held before.
func (h *hostile) unchanged(t *testing.T, before map[string]db.Item, what string) {
	t.Helper()
	sameItems(t, "the cloud's items "+what, before, h.state(t))
}

// redial replaces the hostile client (its connection was closed, by the
// broker or by a restart).
func (h *hostile) redial(t *testing.T) {
	t.Helper()
	h.bad.close()
	h.bad = dialHostile(t, h.r.addr, "dev-1", "dev-1-hostile", true)
}

// hclient is an MQTT v5 client logged in as a device: it publishes what
// it is given, collects the acks of its up batches and, when asked to,
// receives its down batches and acks them as a device would (catch-up
// answers are not acked).
type hclient struct {
	t    *testing.T
	site string
	c    *paho.Client
	acks chan pipeline.Ack
	gone chan struct{}
	once sync.Once

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // acks of down batches being published
}

func dialHostile(t *testing.T, addr, site, clientID string, down bool) *hclient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var conn net.Conn
	var err error
	for range 50 { // the broker may be coming back from a restart
		if conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, err, "hostile client: dial %s", addr)
	h := &hclient{t: t, site: site, acks: make(chan pipeline.Ack, 10000), gone: make(chan struct{})}
	lost := func(error) { h.once.Do(func() { close(h.gone) }) }
	h.c = paho.NewClient(paho.ClientConfig{Conn: packets.NewThreadSafeConn(conn),
		OnClientError:      lost,
		OnServerDisconnect: func(*paho.Disconnect) { lost(nil) },
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(p paho.PublishReceived) (bool, error) {
			h.received(p.Packet)
			return true, nil
		}}})
	_, err = h.c.Connect(ctx, &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true,
		Username: site, UsernameFlag: true, Password: []byte(devicePassword(site)), PasswordFlag: true})
	require.NoError(t, err, "hostile client: connect as %s", site)
	t.Cleanup(h.close)
	subs := []paho.SubscribeOptions{{Topic: topic(site, "up-ack"), QoS: 1}}
	if down {
		subs = append(subs, paho.SubscribeOptions{Topic: topic(site, "down"), QoS: 1})
	}
	sub, err := h.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
	require.NoError(t, err)
	for i, r := range sub.Reasons {
		require.Less(t, r, byte(0x80), "subscribe to %s", subs[i].Topic)
	}
	return h
}

func (h *hclient) received(m *paho.Publish) {
	switch {
	case strings.HasSuffix(m.Topic, "/up-ack"):
		var a pipeline.Ack
		if json.Unmarshal(m.Payload, &a) == nil {
			select {
			case h.acks <- a:
			default:
			}
		}
	case strings.HasSuffix(m.Topic, "/down"):
		var b pipeline.Batch
		if json.Unmarshal(m.Payload, &b) != nil || b.CatchUp || b.ID == "" {
			return
		}
		ack, _ := json.Marshal(pipeline.Ack{V: pipeline.ProtocolVersion, Batch: b.ID, Applied: len(b.Changes)})
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.closed {
			return
		}
		h.wg.Add(1)
		go func() { // not on paho's receiving goroutine, which the PUBACK needs
			defer h.wg.Done()
			_, _ = h.publish(topic(h.site, "down-ack"), ack)
		}()
	}
}

func (h *hclient) alive() bool {
	select {
	case <-h.gone:
		return false
	default:
		return true
	}
}

func (h *hclient) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	_ = h.c.Disconnect(&paho.Disconnect{})
	h.wg.Wait()
}

func (h *hclient) publish(topic string, payload []byte) (byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := h.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
	if resp != nil {
		return resp.ReasonCode, err
	}
	return 0, err
}

// sendPayload publishes payload on the up topic; the broker must take it.
func (h *hclient) sendPayload(t *testing.T, payload []byte) {
	t.Helper()
	code, err := h.publish(topic(h.site, "up"), payload)
	require.NoError(t, err, "publish %d bytes", len(payload))
	require.Less(t, code, byte(0x80), "PUBACK")
}

func (h *hclient) send(t *testing.T, b *pipeline.Batch) pipeline.Ack {
	t.Helper()
	h.sendPayload(t, mustJSON(t, b))
	a, ok := h.maybeAck(b.ID, 10*time.Second)
	require.True(t, ok, "no ack for batch %s", b.ID)
	return a
}

// maybeAck waits up to d for the ack of batch id ("" never matches).
func (h *hclient) maybeAck(id string, d time.Duration) (pipeline.Ack, bool) {
	deadline := time.After(d)
	for {
		select {
		case a := <-h.acks:
			if id != "" && a.Batch == id {
				return a, true
			}
		case <-deadline:
			return pipeline.Ack{}, false
		}
	}
}

// wireResult is what a broker did with a publish sent on a bare
// connection.
type wireResult struct {
	maxPacket  uint32 // the broker's maximum packet size (0: none stated)
	puback     bool
	code       byte // PUBACK or DISCONNECT reason
	disconnect bool
	err        error
}

func (w wireResult) refused() bool { return !w.puback || w.code >= 0x80 }

func (w wireResult) String() string {
	s := fmt.Sprintf("broker maximum packet size %d; ", w.maxPacket)
	switch {
	case w.puback:
		s += fmt.Sprintf("PUBACK %#x", w.code)
	case w.disconnect:
		s += fmt.Sprintf("DISCONNECT %#x", w.code)
	default:
		s += fmt.Sprintf("connection closed (%v)", w.err)
	}
	return s
}

// wirePublish logs in as site on a bare connection and writes one QoS 1
// PUBLISH of payload, whatever the broker's maximum packet size, so the
// broker itself must refuse it.
func wirePublish(t *testing.T, addr, site, clientID, topic string, payload []byte) wireResult {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion, c.ClientID, c.KeepAlive, c.CleanStart = "MQTT", 5, clientID, 30, true
	c.Username, c.UsernameFlag, c.Password, c.PasswordFlag = site, true, []byte(devicePassword(site)), true
	_, err = cp.WriteTo(conn)
	require.NoError(t, err)
	ack, err := packets.ReadPacket(conn)
	require.NoError(t, err, "CONNACK")
	ca, ok := ack.Content.(*packets.Connack)
	require.True(t, ok, "want CONNACK, got %s", ack.PacketType())
	require.Less(t, ca.ReasonCode, byte(0x80), "CONNACK")
	var res wireResult
	if ca.Properties != nil && ca.Properties.MaximumPacketSize != nil {
		res.maxPacket = *ca.Properties.MaximumPacketSize
	}
	pp := packets.NewControlPacket(packets.PUBLISH)
	p := pp.Content.(*packets.Publish)
	p.Topic, p.QoS, p.PacketID, p.Payload = topic, 1, 1, payload
	if _, res.err = pp.WriteTo(conn); res.err != nil {
		return res
	}
	for {
		in, err := packets.ReadPacket(conn)
		if err != nil {
			res.err = err
			return res
		}
		switch v := in.Content.(type) {
		case *packets.Puback:
			res.puback, res.code = true, v.ReasonCode
			return res
		case *packets.Disconnect:
			res.disconnect, res.code = true, v.ReasonCode
			return res
		}
	}
}

// bgWriter writes dev-2 readings (bg-NNNN) every 200 ms until halted.
type bgWriter struct {
	stop chan struct{}
	done chan struct{}
	n    int
}

func startBG(t *testing.T, dev *node) *bgWriter {
	w := &bgWriter{stop: make(chan struct{}), done: make(chan struct{})}
	c := dev.client()
	go func() {
		defer close(w.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := c.Create(ctx, "Reading", db.Item{"deviceId": "dev-2", "id": fmt.Sprintf("bg-%04d", w.n), "value": w.n}, nil)
			cancel()
			if err == nil {
				w.n++
			}
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *bgWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *bgWriter) written() int { return w.n }

// rssKB is a node's resident memory (VmRSS) in KB.
func rssKB(t *testing.T, n *node) int64 {
	t.Helper()
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	require.NotNil(t, cmd, "%s is not running", n.name)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err, line)
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", cmd.Process.Pid)
	return 0
}

// hidden reads one item with its hidden attributes (the version).
func hidden(t *testing.T, c *api.Client, model string, props db.Item) db.Item {
	t.Helper()
	it, err := c.Get(context.Background(), model, props, &db.Params{Hidden: true})
	require.NoError(t, err, "get %s %v", model, props)
	return it
}

// setAttr sets one attribute of a JSON item.
func setAttr(t *testing.T, item json.RawMessage, k string, v any) json.RawMessage {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(item, &m))
	m[k] = v
	return mustJSON(t, m)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
