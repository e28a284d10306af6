package runner

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/broker"
)

// TestRunnerStartsTheBroker checks that a plan's broker serves between
// Start and Shutdown, and that a broker failing to start stops Start
// with its name.
func TestRunnerStartsTheBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	cfg := broker.NewDefaultConfig()
	cfg.Listen = addr
	r, err := New(Plan{Site: "dev-1", Broker: &cfg}, Options{})
	require.NoError(t, err)
	require.NoError(t, r.Start(t.Context()))
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err, "the broker listens")
	require.NoError(t, conn.Close())

	busy, err := New(Plan{Site: "dev-1", Broker: &cfg}, Options{})
	require.NoError(t, err)
	assert.ErrorContains(t, busy.Start(t.Context()), "broker", "the port is taken")

	require.NoError(t, r.Shutdown(context.Background()))
	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "closed by Shutdown")
}
