package sdk

import (
	"context"
	"encoding/json"
	"fmt"

	gojson "github.com/goccy/go-json"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"github.com/iotod/iotod/pipeline"
)

// The wire protocol between iotod and a plugin process: go-plugin over
// gRPC (AutoMTLS), one service whose messages are JSON (the codec
// "iotod-json", chosen per call), so neither side needs generated code.
// ProtocolVersion changes when a message changes incompatibly; iotod and
// the plugin refuse each other at the handshake then.
const (
	ProtocolVersion = 1
	// ServiceName is the gRPC service a plugin serves.
	ServiceName = "iotod.plugin.v1.Plugin"
	// Codec is the name of the JSON codec of the service's messages.
	Codec = "iotod-json"
	// PluginName is the name under which the plugin is dispensed.
	PluginName = "iotod"
)

// Handshake is what iotod and a plugin check before anything else: a
// plugin binary started by hand says it must be started by iotod.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "IOTOD_PLUGIN",
	MagicCookieValue: "a5c1d7e0-iotod-plugin-v1",
}

func init() { encoding.RegisterCodec(jsonCodec{}) }

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return gojson.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return gojson.Unmarshal(data, v) }
func (jsonCodec) Name() string                       { return Codec }

// ConfigureRequest carries the plugin's config (the YAML's `config`
// mapping, as JSON) and what it is for.
type ConfigureRequest struct {
	Kind     pipeline.Kind   `json:"kind"`
	Name     string          `json:"name"`
	Site     string          `json:"site"`
	Pipeline string          `json:"pipeline,omitempty"`
	Config   json.RawMessage `json:"config"`
	// Check only validates the config.
	Check bool `json:"check,omitempty"`
}

// ConfigureReply is empty: a refused config is a gRPC error.
type ConfigureReply struct{}

// ProcessRequest is a batch for a stage, with the changes refused
// before it (a batch's Rejected does not travel in its JSON).
type ProcessRequest struct {
	Batch    pipeline.Batch    `json:"batch"`
	Rejected []pipeline.Reject `json:"rejected,omitempty"`
}

// ProcessReply is the batch that goes on (nil: all dropped), and every
// refused change with its reason.
type ProcessReply struct {
	Batch    *pipeline.Batch   `json:"batch"`
	Rejected []pipeline.Reject `json:"rejected,omitempty"`
}

// FireRequest is a batch for a trigger.
type FireRequest struct {
	Pipeline string            `json:"pipeline"`
	Changes  []pipeline.Change `json:"changes"`
}

// FireReply is empty.
type FireReply struct{}

// service is what a plugin process serves.
type service interface {
	Configure(context.Context, *ConfigureRequest) (*ConfigureReply, error)
	Process(context.Context, *ProcessRequest) (*ProcessReply, error)
	Fire(context.Context, *FireRequest) (*FireReply, error)
}

func unary[Req, Rep any](call func(service, context.Context, *Req) (*Rep, error), method string) grpc.MethodDesc {
	return grpc.MethodDesc{MethodName: method, Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		in := new(Req)
		if err := dec(in); err != nil {
			return nil, err
		}
		if icpt == nil {
			return call(srv.(service), ctx, in)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + ServiceName + "/" + method}
		return icpt(ctx, in, info, func(ctx context.Context, req any) (any, error) { return call(srv.(service), ctx, req.(*Req)) })
	}}
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*service)(nil),
	Methods: []grpc.MethodDesc{
		unary(service.Configure, "Configure"),
		unary(service.Process, "Process"),
		unary(service.Fire, "Fire"),
	},
}

// Client calls a plugin process; iotod's host side uses it.
type Client struct{ conn *grpc.ClientConn }

func (c *Client) call(ctx context.Context, method string, in, out any) error {
	if err := c.conn.Invoke(ctx, "/"+ServiceName+"/"+method, in, out, grpc.CallContentSubtype(Codec)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// Configure sends the config; with req.Check the plugin only validates it.
func (c *Client) Configure(ctx context.Context, req *ConfigureRequest) error {
	return c.call(ctx, "Configure", req, &ConfigureReply{})
}

// Process sends a batch to the plugin's stage. What it returns covers
// the same outbox positions as b (a stage cannot change them); the
// refused changes are in its Rejected, also when the stage dropped the
// batch (then it has no changes).
func (c *Client) Process(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	var out ProcessReply
	if err := c.call(ctx, "Process", &ProcessRequest{Batch: *b, Rejected: b.Rejected}, &out); err != nil {
		return nil, err
	}
	if out.Batch == nil {
		if len(out.Rejected) == 0 {
			return nil, nil
		}
		out.Batch = &pipeline.Batch{V: b.V, ID: b.ID, Kind: b.Kind, Site: b.Site}
	}
	out.Batch.Rejected, out.Batch.Covers = out.Rejected, b.Covers
	return out.Batch, nil
}

// Fire sends changes to the plugin's trigger.
func (c *Client) Fire(ctx context.Context, pipelineName string, changes []pipeline.Change) error {
	return c.call(ctx, "Fire", &FireRequest{Pipeline: pipelineName, Changes: changes}, &FireReply{})
}

// grpcPlugin is the go-plugin Plugin of both sides: the plugin process
// serves impl, iotod gets a *Client.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl service
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&serviceDesc, p.impl)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Client{conn: c}, nil
}

// PluginSet is the go-plugin plugin set of iotod's host side.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{PluginName: &grpcPlugin{}}
}
