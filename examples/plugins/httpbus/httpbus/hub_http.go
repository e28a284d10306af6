package httpbus

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

// The channels a device token may use; a "*" token may use any.
var (
	devicePublishes  = []pipeline.Channel{pipeline.ChanUp, pipeline.ChanDownAck, pipeline.ChanSync}
	deviceSubscribes = []pipeline.Channel{pipeline.ChanDown, pipeline.ChanUpAck}
)

func (h *Hub) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/publish", h.auth(h.publish))
	mux.HandleFunc("GET /v1/subscribe", h.auth(h.subscribe))
	mux.HandleFunc("POST /v1/ack", h.auth(h.ack))
	return mux
}

// auth passes requests with a known bearer token on, with the token's
// client; others get 401.
func (h *Hub) auth(next func(http.ResponseWriter, *http.Request, ClientConfig)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && token != "" {
			// Compare with every token in constant time, so timing tells
			// nothing about how close a guess was.
			var found *ClientConfig
			for i := range h.cfg.Clients {
				if subtle.ConstantTimeCompare([]byte(token), []byte(h.cfg.Clients[i].Token)) == 1 {
					found = &h.cfg.Clients[i]
				}
			}
			if found != nil {
				next(w, r, *found)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="httpbus"`)
		http.Error(w, "httpbus: unknown or missing bearer token", http.StatusUnauthorized)
	}
}

// allowed says why cl may not use ch for site, or nil if it may.
func allowed(cl ClientConfig, verb string, ch pipeline.Channel, site string, chans []pipeline.Channel) error {
	switch {
	case cl.Site == AnySite:
		return nil
	case site != cl.Site:
		return fmt.Errorf("httpbus: the token of site %q may not %s site %q", cl.Site, verb, site)
	case !slices.Contains(chans, ch):
		return fmt.Errorf("httpbus: a device may not %s channel %q (only %v)", verb, ch, chans)
	}
	return nil
}

// target reads the channel and site of a request; a site must be a
// valid site id (or "", for every site).
func target(w http.ResponseWriter, r *http.Request) (ch pipeline.Channel, site string, ok bool) {
	ch, site = pipeline.Channel(r.URL.Query().Get("channel")), r.URL.Query().Get("site")
	if site != "" {
		if err := pipeline.ValidSite(site); err != nil {
			http.Error(w, "httpbus: site: "+err.Error(), http.StatusBadRequest)
			return "", "", false
		}
	}
	return ch, site, true
}

// busError answers a failure of the bus: invalid input is the client's
// fault (400), anything else may pass (503).
func busError(w http.ResponseWriter, err error) {
	code := http.StatusServiceUnavailable
	if errors.Is(err, pipeline.ErrInvalid) {
		code = http.StatusBadRequest
	}
	http.Error(w, err.Error(), code)
}

func (h *Hub) publish(w http.ResponseWriter, r *http.Request, cl ClientConfig) {
	ch, site, ok := target(w, r)
	if !ok {
		return
	}
	if err := allowed(cl, "publish as", ch, site, devicePublishes); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	limit := int64(h.cfg.MaxPayload)
	tooLarge := fmt.Sprintf("httpbus: payload over max_payload (%d bytes)", limit)
	if r.ContentLength > limit {
		http.Error(w, tooLarge, http.StatusRequestEntityTooLarge)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(30 * time.Second))
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		http.Error(w, "httpbus: reading the body: "+err.Error(), http.StatusBadRequest)
		return
	case int64(len(body)) > limit:
		http.Error(w, tooLarge, http.StatusRequestEntityTooLarge)
		return
	}
	uuid := r.Header.Get(headerUUID)
	if !validUUID(uuid) {
		http.Error(w, fmt.Sprintf("httpbus: %s: want 1 to %d printable ASCII characters", headerUUID, maxUUID), http.StatusBadRequest)
		return
	}
	md, err := decodeMetadata(r.Header.Get(headerMetadata))
	if err != nil {
		http.Error(w, "httpbus: "+err.Error(), http.StatusBadRequest)
		return
	}
	msg := message.NewMessage(uuid, body)
	msg.Metadata = md
	// The bus sets pipeline.MetaSite to site, which the token vouched for.
	if err := h.Publish(r.Context(), ch, site, msg); err != nil {
		busError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Hub) subscribe(w http.ResponseWriter, r *http.Request, cl ClientConfig) {
	ch, site, ok := target(w, r)
	if !ok {
		return
	}
	if err := allowed(cl, "subscribe for", ch, site, deviceSubscribes); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	// The bus subscription lives as long as the request: when the client
	// goes away (or the hub closes), it ends.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	msgs, err := h.bus.Subscribe(ctx, ch, site)
	if err != nil {
		busError(w, err)
		return
	}
	id := rand.Text()
	st := &stream{token: cl.Token, pending: map[uint64]*message.Message{}}
	if err := h.register(id, st); err != nil {
		busError(w, err)
		return
	}
	defer h.unregister(id)

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w) // one line per frame
	send := func(f frame) error {
		if err := enc.Encode(f); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send(frame{Ready: true, Sub: id}) != nil {
		return
	}
	for n := uint64(1); ; n++ {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			st.put(n, m)
			if send(frame{N: n, UUID: m.UUID, Metadata: m.Metadata, Payload: m.Payload}) != nil {
				return
			}
		}
	}
}

func (h *Hub) ack(w http.ResponseWriter, r *http.Request, cl ClientConfig) {
	var b ackBody
	dec := json.NewDecoder(io.LimitReader(r.Body, 1024))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		http.Error(w, `httpbus: want {"n": N, "ack": true|false}: `+err.Error(), http.StatusBadRequest)
		return
	}
	st := h.stream(r.URL.Query().Get("sub"))
	switch {
	case st == nil:
		http.Error(w, "httpbus: no such subscription (it has ended)", http.StatusNotFound)
		return
	case subtle.ConstantTimeCompare([]byte(st.token), []byte(cl.Token)) != 1:
		http.Error(w, "httpbus: only the token that opened a subscription may settle its messages", http.StatusForbidden)
		return
	}
	m := st.take(b.N)
	if m == nil {
		http.Error(w, fmt.Sprintf("httpbus: delivery %d is not pending", b.N), http.StatusNotFound)
		return
	}
	if b.Ack {
		m.Ack()
	} else {
		m.Nack()
	}
	w.WriteHeader(http.StatusOK)
}
