package broker

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConnected lists the clients connected now, with their user; one
// that disconnected is not listed, even with its session kept.
func TestConnected(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Anonymous = false
	cfg.Users = []User{{Username: "u-pump-1", Password: "p1", Site: "pump-1"}, {Username: "worker", Password: "w", Role: RoleCloud}}
	b := startBroker(t, cfg, nil)
	assert.Empty(t, b.Connected())

	pump, _, err := dial(t, b.Addr(), opts{id: "pump-1", user: "u-pump-1", pass: "p1", session: true})
	require.NoError(t, err)
	_, _, err = dial(t, b.Addr(), opts{id: "worker-1", user: "worker", pass: "w"})
	require.NoError(t, err)
	_, _, err = dial(t, b.Addr(), opts{id: "pump-2", user: "u-pump-1", pass: "wrong"})
	require.Error(t, err, "refused: never listed")
	got := b.Connected()
	slices.SortFunc(got, func(a, b Client) int { return strings.Compare(a.ID, b.ID) })
	assert.Equal(t, []Client{{ID: "pump-1", Username: "u-pump-1"}, {ID: "worker-1", Username: "worker"}}, got)

	require.NoError(t, pump.Disconnect(&paho.Disconnect{}))
	require.Eventually(t, func() bool { return len(b.Connected()) == 1 }, wait, 10*time.Millisecond,
		"a client that left is not listed (its session is kept)")
	assert.Equal(t, "worker-1", b.Connected()[0].ID)
}
