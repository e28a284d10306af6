package main

import (
	"context"
	"net"
	"testing"

	"github.com/iotod/iotod/examples/plugins/httpbus/httpbus"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
	"github.com/iotod/iotod/plugins/external"
	"github.com/iotod/iotod/plugins/external/externaltest"
)

// TestConformance runs the transport conformance suite, the one the
// built-in transports pass, against this plugin as iotod runs it: built,
// each transport in a process of its own, called over gRPC. Each
// transport is a client of one hub (with a "*" token, as a cloud
// worker's), which runs in a plugin process of its own too. Skipped
// under -short (it builds the plugin).
func TestConformance(t *testing.T) {
	bin := externaltest.Build(t, ".")

	// The hub, on a loopback address nothing listens on now.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	hubConfig := externaltest.Config(bin, map[string]any{
		"listen": addr, "clients": []map[string]any{{"token": "worker-token", "site": "*"}}})
	set := pipeline.Settings{ID: pipeline.ID{Type: external.TypeName, Name: "hub"}, Kind: pipeline.KindTransport, Site: "cloud"}
	c, err := external.NewTransportFactory().Create(t.Context(), set, hubConfig)
	if err != nil {
		t.Fatal(err)
	}
	hub := c.(*external.Transport)
	t.Cleanup(func() { _ = hub.Close(context.Background()) })
	if got := hub.MaxPayload(); got != httpbus.DefaultMaxPayload {
		t.Errorf("the hub's maximum payload reached iotod as %d, want %d (the default)", got, httpbus.DefaultMaxPayload)
	}

	externaltest.Transport(t, plugintest.TransportFeatures{}, bin, func(*testing.T) map[string]any {
		return map[string]any{"url": "http://" + addr, "token": "worker-token", "connect_timeout": "3s"}
	})
}
