package httpbus

import (
	"context"
	"testing"
	"time"
)

// Tokens of the hubs the tests start.
const (
	workerToken = "worker-token"
	dev1Token   = "dev1-token"
	dev2Token   = "dev2-token"
)

// startHub starts a hub on a free loopback port with a "*" token and two
// device tokens (sites dev-1 and dev-2), closed when the test ends.
func startHub(t *testing.T, maxPayload int) *Hub {
	t.Helper()
	c := Config{Listen: "127.0.0.1:0", MaxPayload: maxPayload, Clients: []ClientConfig{
		{Token: workerToken, Site: AnySite},
		{Token: dev1Token, Site: "dev-1"},
		{Token: dev2Token, Site: "dev-2"},
	}}
	h, err := NewHub(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithin(t, h.Close) })
	return h
}

// newClient returns a client of h with token, closed when the test ends.
func newClient(t *testing.T, h *Hub, token string) *Client {
	t.Helper()
	c, err := NewClient(Config{URL: h.URL(), Token: token, MaxPayload: h.MaxPayload(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithin(t, c.Close) })
	return c
}

func closeWithin(t *testing.T, closeFn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := closeFn(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}
