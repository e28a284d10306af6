// Package sdk is how a third party writes an iotod plugin that runs in a
// process of its own: implement a stage, a trigger or a transport (the
// same interfaces as iotod's built-ins: pipeline.Stage, pipeline.Trigger,
// pipeline.Transport),
// and call Serve from main. iotod starts the binary named in the YAML
// (`plugin/NAME: {path: ..., config: {...}}`, or a transport of `type:
// plugin`), hands it its config, and sends it whole batches (or a
// transport's messages) over gRPC; the author never touches go-plugin or
// gRPC. docs/plugins.md walks through it.
package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iotod/iotod/pipeline"
)

// Plugin describes a plugin: how it checks its config and builds its
// stage or trigger from it. The config is the YAML's `config` mapping as
// JSON (`{}` when there is none).
type Plugin struct {
	// Validate checks a config; nil accepts any. Its error is shown to
	// the user with the YAML's file and line.
	Validate func(config []byte) error
	// Stage builds the plugin's stage (nil: it has none).
	Stage func(config []byte) (pipeline.Stage, error)
	// Trigger builds the plugin's trigger (nil: it has none).
	Trigger func(config []byte) (pipeline.Trigger, error)
	// Transport builds the plugin's transport (nil: it has none). If it
	// implements pipeline.PayloadLimiter, iotod learns its maximum; if it
	// has a `Connected() bool` method, iotod's status shows it.
	Transport func(config []byte) (pipeline.Transport, error)
}

// Serve serves p to the iotod process that started this one, until
// iotod stops it. Run by hand, it says it must be started by iotod and
// exits. Log to stderr (a log/slog or hclog logger): iotod shows the
// lines with the plugin's name.
func Serve(p Plugin) {
	srv := &server{p: p}
	// A CPU profile of the plugin process, for its author: written when
	// iotod stops the plugin (go tool pprof PLUGIN FILE).
	if f := os.Getenv("IOTOD_PLUGIN_CPUPROFILE"); f != "" {
		if out, err := os.Create(f); err == nil && pprof.StartCPUProfile(out) == nil {
			defer func() { pprof.StopCPUProfile(); _ = out.Close() }()
		}
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &grpcPlugin{impl: srv}},
		GRPCServer:      newServer,
		Logger:          hclog.New(&hclog.LoggerOptions{Level: hclog.Info, JSONFormat: true}),
	})
	srv.close()
}

// server serves one plugin process: a process serves one component.
type server struct {
	p Plugin

	mu        sync.Mutex
	stage     pipeline.Stage
	trigger   pipeline.Trigger
	transport pipeline.Transport
}

// close closes what the plugin built, when iotod stops it.
func (s *server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []any{s.stage, s.trigger, s.transport} {
		if cl, ok := c.(interface{ Close(context.Context) error }); ok {
			_ = cl.Close(ctx)
		}
	}
}

// errorStatus carries err across the boundary: permanent errors (and
// invalid input) as InvalidArgument, others as Unavailable (retried).
func errorStatus(err error) error {
	if errors.Is(err, pipeline.ErrTooLargeForTransport) {
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	if pipeline.IsPermanent(err) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}

func (s *server) Configure(_ context.Context, req *ConfigureRequest) (*ConfigureReply, error) {
	cfg := []byte(req.Config)
	if len(cfg) == 0 || string(cfg) == "null" {
		cfg = []byte("{}")
	}
	if s.p.Validate != nil {
		if err := s.p.Validate(cfg); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	var build func([]byte) (any, error)
	switch req.Kind {
	case pipeline.KindStage:
		if s.p.Stage != nil {
			build = func(c []byte) (any, error) { return s.p.Stage(c) }
		}
	case pipeline.KindTrigger:
		if s.p.Trigger != nil {
			build = func(c []byte) (any, error) { return s.p.Trigger(c) }
		}
	case pipeline.KindTransport:
		if s.p.Transport != nil {
			build = func(c []byte) (any, error) { return s.p.Transport(c) }
		}
	}
	if build == nil {
		return nil, status.Errorf(codes.InvalidArgument, "this plugin has no %s", req.Kind)
	}
	if req.Check {
		return &ConfigureReply{}, nil
	}
	c, err := build(cfg)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	reply := &ConfigureReply{}
	// By the kind asked for: a type may be both a stage and a trigger.
	switch req.Kind {
	case pipeline.KindStage:
		s.stage = c.(pipeline.Stage)
	case pipeline.KindTransport:
		s.transport = c.(pipeline.Transport)
		if l, ok := c.(pipeline.PayloadLimiter); ok {
			reply.MaxPayload = l.MaxPayload()
		}
	default:
		s.trigger = c.(pipeline.Trigger)
	}
	return reply, nil
}

func (s *server) Process(ctx context.Context, req *ProcessRequest) (*ProcessReply, error) {
	s.mu.Lock()
	st := s.stage
	s.mu.Unlock()
	if st == nil {
		return nil, status.Error(codes.FailedPrecondition, "no stage configured")
	}
	b := req.Batch
	b.Rejected = req.Rejected
	out, err := st.Process(ctx, &b)
	if err != nil {
		return nil, errorStatus(err)
	}
	if out == nil {
		return &ProcessReply{}, nil
	}
	return &ProcessReply{Batch: out, Rejected: out.Rejected}, nil
}

func (s *server) Fire(ctx context.Context, req *FireRequest) (*FireReply, error) {
	s.mu.Lock()
	tr := s.trigger
	s.mu.Unlock()
	if tr == nil {
		return nil, status.Error(codes.FailedPrecondition, "no trigger configured")
	}
	if err := tr.Fire(ctx, req.Pipeline, req.Changes); err != nil {
		return nil, errorStatus(err)
	}
	return &FireReply{}, nil
}

// Decode is a helper for a plugin's Validate and builders: it decodes a
// config strictly (unknown keys are errors) into out.
func Decode(config []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
