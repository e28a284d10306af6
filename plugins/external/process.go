package external

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

// process is one plugin process: started on first use, configured, and
// started again (with backoff) after it died. Calls never wait for a
// restart: they fail with a retryable error, and the caller (a sender, a
// trigger queue) sends the same batch again later.
type process struct {
	name string // the component and its pipeline, for errors and logs
	path string
	cfg  Config
	req  sdk.ConfigureRequest
	log  *slog.Logger

	mu        sync.Mutex
	client    *plugin.Client
	rpc       *sdk.Client
	failures  int
	nextStart time.Time
	closed    bool
	// maxPayload is what a transport plugin said its maximum is.
	maxPayload int
}

func newProcess(name, path string, cfg Config, req sdk.ConfigureRequest, log *slog.Logger) (*process, error) {
	body, err := json.Marshal(cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("%w: config: %v", pipeline.ErrInvalid, err)
	}
	if cfg.Config == nil {
		body = []byte("{}")
	}
	req.Config = body
	return &process{name: name, path: path, cfg: cfg, req: req, log: log}, nil
}

// clientFor returns a configured client, starting the process if needed.
func (p *process) clientFor(ctx context.Context) (*sdk.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, fmt.Errorf("plugin %s: %w", p.name, pipeline.ErrClosed)
	case p.client != nil && !p.client.Exited():
		return p.rpc, nil
	case p.client != nil:
		p.client.Kill()
		p.client, p.rpc = nil, nil
		p.log.Warn("plugin exited; it is started again", "plugin", p.name)
		p.nextStart = time.Now().Add(p.backoff())
	}
	if wait := time.Until(p.nextStart); wait > 0 {
		return nil, fmt.Errorf("plugin %s: restarting in %s", p.name, wait.Round(time.Millisecond))
	}
	c, rpc, err := p.start(ctx)
	if err != nil {
		p.failures++
		p.nextStart = time.Now().Add(p.backoff())
		return nil, err
	}
	p.failures = 0
	p.client, p.rpc = c, rpc
	return rpc, nil
}

func (p *process) backoff() time.Duration {
	return min(p.cfg.RestartDelay<<min(p.failures, 16), time.Minute)
}

// start starts the binary, checks it, and configures it.
func (p *process) start(ctx context.Context) (*plugin.Client, *sdk.Client, error) {
	cmd := exec.Command(p.path)
	dieWithParent(cmd)
	cc := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginSet(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  sdk.DialOptions(),
		StartTimeout:     p.cfg.StartTimeout,
		Logger:           pluginLogger(p.log, p.name),
	}
	if p.cfg.SHA256 != "" {
		sum, _ := hex.DecodeString(p.cfg.SHA256) // checked by Validate
		cc.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	c := plugin.NewClient(cc)
	fail := func(what string, err error) (*plugin.Client, *sdk.Client, error) {
		c.Kill()
		return nil, nil, fmt.Errorf("plugin %s (%s): %s: %w", p.name, p.path, what, explain(err))
	}
	proto, err := c.Client()
	if err != nil {
		return fail("start", err)
	}
	raw, err := proto.Dispense(sdk.PluginName)
	if err != nil {
		return fail("dispense", err)
	}
	rpc, ok := raw.(*sdk.Client)
	if !ok {
		return fail("dispense", fmt.Errorf("got a %T", raw))
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	reply, err := rpc.Configure(cctx, &p.req)
	if err != nil {
		return fail("config", callError(err))
	}
	p.maxPayload = reply.MaxPayload
	p.log.Info("plugin started", "plugin", p.name, "path", p.path, "pid", c.ReattachConfig().Pid)
	return c, rpc, nil
}

// call runs fn against the plugin, within the call timeout when ctx has
// no deadline. Errors name the plugin; the plugin's permanent errors
// (and a config it refuses) are pipeline.Permanent, others retryable.
func (p *process) call(ctx context.Context, fn func(context.Context, *sdk.Client) error) error {
	rpc, err := p.clientFor(ctx)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.CallTimeout)
		defer cancel()
	}
	if err := fn(ctx, rpc); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// It did not answer in time: whatever it is stuck on, a new
			// process takes the next call.
			p.kill(rpc)
		}
		return fmt.Errorf("plugin %s: %w", p.name, callError(err))
	}
	return nil
}

// kill stops the process behind rpc (if it is still the current one), so
// that the next call starts a new one.
func (p *process) kill(rpc *sdk.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && p.rpc == rpc {
		p.log.Warn("plugin did not answer in time; it is started again", "plugin", p.name)
		p.client.Kill()
		p.client, p.rpc = nil, nil
	}
}

// callError turns a gRPC status into iotod's error kinds.
func callError(err error) error {
	st, ok := status.FromError(errors.Unwrap(err))
	if !ok {
		st, ok = status.FromError(err)
	}
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.InvalidArgument:
		return pipeline.Permanent(errors.New(st.Message()))
	case codes.ResourceExhausted:
		return fmt.Errorf("%s: %w", st.Message(), pipeline.ErrTooLargeForTransport)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w", st.Message(), context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("%s: %w", st.Message(), context.Canceled)
	}
	return errors.New(st.Message())
}

// explain makes go-plugin's start errors say what to do.
func explain(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "checksums did not match"):
		return pipeline.Permanent(fmt.Errorf("its SHA-256 is not the sha256 of the config: %w", err))
	case strings.Contains(msg, "Incompatible API version"), strings.Contains(msg, "incompatible"):
		return pipeline.Permanent(fmt.Errorf("it speaks another plugin protocol than iotod's version %d (rebuild it with this iotod's pipeline/sdk): %w", sdk.ProtocolVersion, err))
	}
	return err
}

// close stops the process.
func (p *process) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.client != nil {
		p.client.Kill()
		p.client, p.rpc = nil, nil
	}
}

// pluginLogger forwards go-plugin's log (the plugin's stderr included)
// into iotod's log, each line with the plugin's name.
func pluginLogger(log *slog.Logger, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Info, Output: lineWriter{log: log.With("plugin", name)}, DisableTime: true})
}

type lineWriter struct{ log *slog.Logger }

func (w lineWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			w.log.Info(pipeline.Truncate(line, 2048))
		}
	}
	return len(b), nil
}
