package sdk

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"github.com/iotod/iotod/pipeline"
)

// The wire protocol between iotod and a plugin process: go-plugin over
// gRPC (AutoMTLS), one service whose messages are JSON with the items of
// changes as raw bytes after it (the codec "iotod-v2", chosen per call:
// codec.go), so neither side needs generated code.
// ProtocolVersion changes when a message changes incompatibly; iotod and
// the plugin refuse each other at the handshake then.
const (
	ProtocolVersion = 2
	// ServiceName is the gRPC service a plugin serves.
	ServiceName = "iotod.plugin.v1.Plugin"
	// Codec is the name of the codec of the service's messages.
	Codec = "iotod-v2"
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

func init() { encoding.RegisterCodec(codec{}) }

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

// ConfigureReply says what iotod needs to know of the component built (a
// refused config is a gRPC error): for a transport, its maximum payload
// (0: none).
type ConfigureReply struct {
	MaxPayload int `json:"max_payload,omitempty"`
}

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

// PublishRequest is one message for a transport to publish on Channel
// to (or from) Site.
type PublishRequest struct {
	Channel  pipeline.Channel  `json:"channel"`
	Site     string            `json:"site"`
	UUID     string            `json:"uuid"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Payload  []byte            `json:"payload"`
}

// PublishReply is empty: the transport has the message.
type PublishReply struct{}

// SubscribeFrame is what iotod sends on a Subscribe stream: first the
// channel and site to subscribe to, then the settlement of each
// delivery N (Ack true: acked; false: nacked, to be delivered again).
type SubscribeFrame struct {
	Channel pipeline.Channel `json:"channel,omitempty"`
	Site    string           `json:"site,omitempty"`
	N       uint64           `json:"n,omitempty"`
	Ack     bool             `json:"ack,omitempty"`
}

// Delivery is what a plugin sends on a Subscribe stream: first Ready,
// once the subscription is live, then each message, numbered from 1.
type Delivery struct {
	Ready    bool              `json:"ready,omitempty"`
	N        uint64            `json:"n,omitempty"`
	UUID     string            `json:"uuid,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Payload  []byte            `json:"payload,omitempty"`
}

// ConnectedRequest asks a transport whether it is connected.
type ConnectedRequest struct{}

// ConnectedReply answers it; Known is false when the transport does not
// say (it implements no Connected method).
type ConnectedReply struct {
	Known     bool `json:"known,omitempty"`
	Connected bool `json:"connected,omitempty"`
}

// service is what a plugin process serves.
type service interface {
	Configure(context.Context, *ConfigureRequest) (*ConfigureReply, error)
	Process(context.Context, *ProcessRequest) (*ProcessReply, error)
	Fire(context.Context, *FireRequest) (*FireReply, error)
	Publish(context.Context, *PublishRequest) (*PublishReply, error)
	Connected(context.Context, *ConnectedRequest) (*ConnectedReply, error)
	Subscribe(grpc.ServerStream) error
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
		unary(service.Publish, "Publish"),
		unary(service.Connected, "Connected"),
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Subscribe",
		Handler:       func(srv any, stream grpc.ServerStream) error { return srv.(service).Subscribe(stream) },
		ServerStreams: true,
		ClientStreams: true,
	}},
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
func (c *Client) Configure(ctx context.Context, req *ConfigureRequest) (*ConfigureReply, error) {
	var out ConfigureReply
	if err := c.call(ctx, "Configure", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
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

// Publish has the plugin's transport publish a message.
func (c *Client) Publish(ctx context.Context, req *PublishRequest) error {
	return c.call(ctx, "Publish", req, &PublishReply{})
}

// Connected asks the plugin's transport whether it is connected; known
// is false when it does not say.
func (c *Client) Connected(ctx context.Context) (connected, known bool, err error) {
	var out ConnectedReply
	if err := c.call(ctx, "Connected", &ConnectedRequest{}, &out); err != nil {
		return false, false, err
	}
	return out.Connected, out.Known, nil
}

// Subscribe opens a Subscribe stream: it sends the first frame and waits
// for the plugin's Ready. The stream ends with ctx.
func (c *Client) Subscribe(ctx context.Context, ch pipeline.Channel, site string) (grpc.ClientStream, error) {
	s, err := c.conn.NewStream(ctx, &serviceDesc.Streams[0], "/"+ServiceName+"/Subscribe", grpc.CallContentSubtype(Codec))
	if err != nil {
		return nil, fmt.Errorf("Subscribe: %w", err)
	}
	if err := s.SendMsg(&SubscribeFrame{Channel: ch, Site: site}); err != nil {
		return nil, fmt.Errorf("Subscribe: %w", err)
	}
	var d Delivery
	if err := s.RecvMsg(&d); err != nil {
		return nil, fmt.Errorf("Subscribe: %w", err)
	}
	if !d.Ready {
		return nil, fmt.Errorf("Subscribe: the plugin sent a message before it said the subscription is live")
	}
	return s, nil
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

// Transport settings of both sides: batches are up to megabytes, so the
// HTTP/2 windows start large (a 64 KB window would have every large call
// wait for window updates) and the buffers are sized for them.
const (
	window = 16 << 20
	buffer = 256 << 10
)

// DialOptions are the gRPC options of iotod's side.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(window), grpc.WithInitialConnWindowSize(window),
		grpc.WithReadBufferSize(buffer), grpc.WithWriteBufferSize(buffer),
	}
}

// newServer is the plugin's gRPC server, with the same settings.
func newServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts,
		grpc.InitialWindowSize(window), grpc.InitialConnWindowSize(window),
		grpc.ReadBufferSize(buffer), grpc.WriteBufferSize(buffer),
		grpc.NumStreamWorkers(4))...)
}

// PluginSet is the go-plugin plugin set of iotod's host side.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{PluginName: &grpcPlugin{}}
}
