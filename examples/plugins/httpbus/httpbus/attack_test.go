package httpbus

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

// request sends a raw request to h and returns the status and the body
// (what came of it in 2s: a subscription the hub wrongly allowed streams
// on).
func request(t *testing.T, h *Hub, method, target, auth string, body io.Reader, header map[string]string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.URL()+target, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// TestAttacker plays a device that tries to pass for another, and a
// stranger without a token: the hub refuses each try, and nothing
// reaches the bus.
func TestAttacker(t *testing.T) {
	const maxPayload = 1024
	h := startHub(t, maxPayload)
	ctx := t.Context()
	// A cloud worker hears every site on every channel.
	var heard []<-chan *message.Message
	for _, ch := range []pipeline.Channel{pipeline.ChanUp, pipeline.ChanDown, pipeline.ChanDownAck, pipeline.ChanUpAck, pipeline.ChanSync} {
		in, err := h.Subscribe(ctx, ch, "")
		if err != nil {
			t.Fatal(err)
		}
		heard = append(heard, in)
	}

	dev1 := "Bearer " + dev1Token
	okHeaders := map[string]string{headerUUID: "u-1", headerMetadata: `{"k":"v"}`}
	tries := []struct {
		name, method, target, auth string
		body                       string
		header                     map[string]string
		want                       int
		says                       string
	}{
		{"publish as another site", "POST", "/v1/publish?channel=up&site=dev-2", dev1, "x", okHeaders, 403, `may not publish as site "dev-2"`},
		{"publish as broadcast", "POST", "/v1/publish?channel=up&site=all", dev1, "x", okHeaders, 403, "may not"},
		{"publish without site", "POST", "/v1/publish?channel=sync", dev1, "x", okHeaders, 403, "may not"},
		{"publish on down", "POST", "/v1/publish?channel=down&site=dev-1", dev1, "x", okHeaders, 403, `channel "down"`},
		{"publish on up-ack", "POST", "/v1/publish?channel=up-ack&site=dev-1", dev1, "x", okHeaders, 403, `channel "up-ack"`},
		{"subscribe to another site's down", "GET", "/v1/subscribe?channel=down&site=dev-2", dev1, "", nil, 403, `site "dev-2"`},
		{"subscribe to every site", "GET", "/v1/subscribe?channel=down&site=", dev1, "", nil, 403, `site ""`},
		{"malformed site", "POST", "/v1/publish?channel=up&site=dev-1%2F..", dev1, "x", okHeaders, 400, "site"},
		{"subscribe to up", "GET", "/v1/subscribe?channel=up&site=dev-1", dev1, "", nil, 403, `channel "up"`},
		{"wrong token", "POST", "/v1/publish?channel=up&site=dev-1", "Bearer nope", "x", okHeaders, 401, "token"},
		{"no token", "POST", "/v1/publish?channel=up&site=dev-1", "", "x", okHeaders, 401, "token"},
		{"basic auth", "GET", "/v1/subscribe?channel=down&site=dev-1", "Basic " + dev1Token, "", nil, 401, "token"},
		{"empty bearer", "POST", "/v1/ack?sub=x", "Bearer ", `{"n":1,"ack":true}`, nil, 401, "token"},
		{"oversized body", "POST", "/v1/publish?channel=up&site=dev-1", dev1, strings.Repeat("x", maxPayload+1), okHeaders, 413, "max_payload"},
		{"malformed metadata", "POST", "/v1/publish?channel=up&site=dev-1", dev1, "x", map[string]string{headerUUID: "u", headerMetadata: `{"k":`}, 400, headerMetadata},
		{"metadata not strings", "POST", "/v1/publish?channel=up&site=dev-1", dev1, "x", map[string]string{headerUUID: "u", headerMetadata: `{"k":1}`}, 400, headerMetadata},
		{"metadata null", "POST", "/v1/publish?channel=up&site=dev-1", dev1, "x", map[string]string{headerUUID: "u", headerMetadata: `null`}, 400, headerMetadata},
		{"metadata too large", "POST", "/v1/publish?channel=up&site=dev-1", dev1, "x", map[string]string{headerUUID: "u", headerMetadata: `{"k":"` + strings.Repeat("v", maxMetadata) + `"}`}, 400, headerMetadata},
		{"no uuid", "POST", "/v1/publish?channel=up&site=dev-1", dev1, "x", nil, 400, headerUUID},
		{"ack of no subscription", "POST", "/v1/ack?sub=nope", dev1, `{"n":1,"ack":true}`, nil, 404, "no such subscription"},
		{"ack not json", "POST", "/v1/ack?sub=nope", dev1, `yes`, nil, 400, "want"},
	}
	for _, tc := range tries {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		code, text := request(t, h, tc.method, tc.target, tc.auth, body, tc.header)
		if code != tc.want || !strings.Contains(text, tc.says) {
			t.Errorf("%s: got %d %q, want %d saying %q", tc.name, code, text, tc.want, tc.says)
		}
	}
	// An oversized body without a Content-Length is cut at the limit.
	code, _ := request(t, h, "POST", "/v1/publish?channel=up&site=dev-1", dev1,
		io.MultiReader(strings.NewReader(strings.Repeat("x", maxPayload)), strings.NewReader("!")), okHeaders)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversized body: got %d, want 413", code)
	}

	// The client says the same, as permanent errors (413: too large).
	c := newClient(t, h, dev1Token)
	if err := c.Publish(ctx, pipeline.ChanUp, "dev-2", message.NewMessage("u-2", []byte("x"))); !pipeline.IsPermanent(err) {
		t.Errorf("client publish as dev-2: %v, want a permanent error", err)
	}
	if _, err := c.Subscribe(ctx, pipeline.ChanDown, "dev-2"); !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "403") {
		t.Errorf("client subscribe for dev-2: %v, want the hub's 403", err)
	}
	stranger := newClient(t, h, "nope")
	if err := stranger.Publish(ctx, pipeline.ChanUp, "dev-1", message.NewMessage("u-3", []byte("x"))); !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Errorf("stranger publish: %v, want the hub's 401", err)
	}

	// Nothing got through: the worker hears only the honest message that
	// follows, with the site its token vouches for, whatever it claims.
	code, text := request(t, h, "POST", "/v1/publish?channel=up&site=dev-1", dev1, strings.NewReader("honest"),
		map[string]string{headerUUID: "u-honest", headerMetadata: `{"` + pipeline.MetaSite + `":"dev-2"}`})
	if code != http.StatusOK {
		t.Fatalf("honest publish: %d %s", code, text)
	}
	deadline := time.After(time.Second)
	for got := 0; got < 2; { // the honest message, then a quiet second
		select {
		case m := <-heard[0]:
			if m.UUID != "u-honest" || m.Metadata.Get(pipeline.MetaSite) != "dev-1" || string(m.Payload) != "honest" {
				t.Errorf("the worker heard %s from site %q: %q", m.UUID, m.Metadata.Get(pipeline.MetaSite), m.Payload)
			}
			m.Ack()
			got++
		case m := <-heard[1]:
			t.Errorf("the worker heard %s on down", m.UUID)
		case m := <-heard[2]:
			t.Errorf("the worker heard %s on down-ack", m.UUID)
		case m := <-heard[3]:
			t.Errorf("the worker heard %s on up-ack", m.UUID)
		case m := <-heard[4]:
			t.Errorf("the worker heard %s on sync", m.UUID)
		case <-deadline:
			got = 2
		}
	}
}

// TestSettleOnlyByOpener: the messages of a stream are settled only with
// the token that opened it.
func TestSettleOnlyByOpener(t *testing.T) {
	h := startHub(t, DefaultMaxPayload)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.URL()+"/v1/subscribe?channel=down&site=dev-1", nil)
	req.Header.Set("Authorization", "Bearer "+dev1Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() frame {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("stream ended: %v", errors.Join(lines.Err(), io.EOF))
		}
		f, err := decodeFrame(lines.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ready := next()
	if !ready.Ready {
		t.Fatalf("first frame %+v, want ready", ready)
	}
	if err := h.Publish(ctx, pipeline.ChanDown, "dev-1", message.NewMessage("d-1", []byte("p"))); err != nil {
		t.Fatal(err)
	}
	if f := next(); f.N != 1 || f.UUID != "d-1" || string(f.Payload) != "p" || f.Metadata[pipeline.MetaSite] != "dev-1" {
		t.Fatalf("got %+v", f)
	}
	ack := `{"n":1,"ack":false}`
	for _, tok := range []string{dev2Token, workerToken} {
		if code, text := request(t, h, "POST", "/v1/ack?sub="+ready.Sub, "Bearer "+tok, strings.NewReader(ack), nil); code != 403 {
			t.Errorf("ack with another token: %d %s, want 403", code, text)
		}
	}
	if code, text := request(t, h, "POST", "/v1/ack?sub="+ready.Sub, "Bearer "+dev1Token, strings.NewReader(ack), nil); code != 200 {
		t.Fatalf("nack by the opener: %d %s", code, text)
	}
	if f := next(); f.N != 2 || f.UUID != "d-1" { // nacked: comes again
		t.Fatalf("after the nack: %+v", f)
	}
	if code, _ := request(t, h, "POST", "/v1/ack?sub="+ready.Sub, "Bearer "+dev1Token, strings.NewReader(ack), nil); code != 404 {
		t.Errorf("settling delivery 1 twice: %d, want 404", code)
	}
}
