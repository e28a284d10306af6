// Package mqtt is a pipeline.Transport over an MQTT v5 broker, on
// paho.golang's autopaho: QoS 1 everywhere, a stable client id with a
// persistent session (CleanStart false, a session expiry, and a
// file-backed session store for messages sent and not yet acknowledged),
// reconnects with backoff, TLS and mutual TLS.
//
// Topics follow a template, "iotod/{site}/{channel}" by default. A
// subscription for a site subscribes to that site's topic (and, on the
// down channel, to pipeline.Broadcast's); a subscription for every site
// ("") subscribes to "$share/{group}/iotod/+/{channel}", so several
// workers split the load. The site of a received message comes from its
// topic.
//
// Acknowledgement is manual: the PUBACK of a received message is sent once
// every local subscription it went to has acked it; a Nack delivers it
// again to the same consumer. What is not acked when the transport closes
// stays with the broker's session and comes again after a restart with
// the same client id.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/store/file"

	"github.com/iotod/iotod/pipeline"
)

// ackInterval is how often paho sends the PUBACKs of acked messages (in
// the order the messages came, as MQTT requires).
const ackInterval = 10 * time.Millisecond

// Waits of received messages nobody acks; variables so that tests can
// shorten them.
var (
	// claimWait is how long a received message that no subscription wants
	// yet (after a restart, the broker sends the session's messages before
	// the pipelines subscribe) waits for one before it is dropped.
	claimWait = 10 * time.Second
	// releaseWait is how long the messages held by a subscription that
	// ended wait before they are dropped, and its topics unsubscribed: a
	// Close within that time leaves both to the broker's session.
	releaseWait = 5 * time.Second
)

// Transport is a pipeline.Transport over MQTT. It is safe for concurrent
// use.
type Transport struct {
	cfg      Config
	clientID string
	topics   topicScheme
	log      *slog.Logger
	cm       *autopaho.ConnectionManager
	session  *sessionGuard
	metrics  metrics
	keep     map[string]bool // the metadata keys received messages keep

	claimWait, releaseWait time.Duration

	closing chan struct{}
	pumps   sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	ready     chan struct{} // closed while connected with subscriptions restored
	isReady   bool
	gen       uint64 // counts connection ups and downs
	subs      map[*subscription]struct{}
	filters   map[string]*filterRef
	unclaimed []*pending
	lastAck   time.Time
	failing   bool          // a connect attempt failed since the last connection
	failed    chan struct{} // closed when failing becomes true
	maxPacket uint32        // the broker's maximum packet size (CONNACK), 0 for none
	refused   refusals
}

// New starts a transport with cfg, which must be valid, for set.Site; it
// connects in the background. set.Dir anchors relative paths; set.Logger
// and set.Metrics may be nil.
func New(cfg Config, set pipeline.Settings) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt: config: %w", err)
	}
	clientID := expandSite(cfg.ClientID, set.Site)
	if cfg.ClientID == "" {
		clientID = set.Site
	}
	if clientID == "" || clientID == "." || clientID == ".." || validLevel(clientID) != nil {
		return nil, fmt.Errorf("%w: mqtt: client id %q (client_id %q, site %q) is not usable", pipeline.ErrInvalid, clientID, cfg.ClientID, set.Site)
	}
	u, tlsCfg, err := dialConfig(cfg, set.Dir)
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	topics, _ := parseTemplate(cfg.Topic) // checked by Validate
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Transport{
		cfg: cfg, clientID: clientID, topics: topics, log: log.With("client_id", clientID),
		metrics:   newMetrics(set.ID.String()),
		keep:      map[string]bool{},
		claimWait: claimWait, releaseWait: releaseWait,
		closing: make(chan struct{}),
		ready:   make(chan struct{}),
		failed:  make(chan struct{}),
		subs:    map[*subscription]struct{}{},
		filters: map[string]*filterRef{},
		refused: refusals{byKey: map[string]droppedPacket{}},
	}
	for _, k := range cfg.MetadataKeys {
		t.keep[k] = true
	}
	dir := resolve(set.Dir, cfg.SessionDir, filepath.Join("data", "mqtt-session", clientID))
	if t.session, err = openSession(dir, cfg.PublishTimeout, t.onDropped); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	t.session.ignoreBrokerMax = cfg.ignoreBrokerMax
	t.cm, err = autopaho.NewConnection(context.Background(), t.clientConfig(u, tlsCfg))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("mqtt: %w", err), t.session.Close())
	}
	return t, nil
}

// newFileStore opens the packet store in dir/sub.
func newFileStore(dir, sub string) (*file.Store, error) {
	st, err := file.New(filepath.Join(dir, sub), "p", ".pkt")
	if err != nil {
		return nil, fmt.Errorf("session store %s: %w", dir, err)
	}
	return st, nil
}

func (t *Transport) clientConfig(u *url.URL, tlsCfg *tls.Config) autopaho.ClientConfig {
	cc := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     uint16(t.cfg.KeepAlive / time.Second),
		CleanStartOnInitialConnection: t.cfg.CleanStart,
		SessionExpiryInterval:         uint32(t.cfg.SessionExpiry / time.Second),
		ReconnectBackoff:              backoff(t.cfg.ReconnectMin, t.cfg.ReconnectMax),
		ConnectTimeout:                t.cfg.ConnectTimeout,
		ConnectUsername:               t.cfg.Username,
		ConnectPassword:               []byte(t.cfg.Password),
		ConnectPacketBuilder:          requestProblemInfo,
		OnConnectionUp:                t.onConnectionUp,
		OnConnectionDown:              t.onConnectionDown,
		OnConnectError:                t.onConnectError,
		Debug:                         pahoLogger{t.log, "autopaho"},
		Errors:                        pahoLogger{t.log, "autopaho"},
		PahoDebug:                     pahoLogger{t.log, "paho"},
		PahoErrors:                    pahoLogger{t.log, "paho"},
		ClientConfig: paho.ClientConfig{
			ClientID:                   t.clientID,
			Session:                    t.session,
			PacketTimeout:              t.cfg.PublishTimeout,
			EnableManualAcknowledgment: true,
			SendAcksInterval:           ackInterval,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) { t.onPublish(pr); return true, nil },
			},
		},
	}
	cc.TlsCfg = tlsCfg
	return cc
}

// Close ends every subscription and disconnects cleanly. Messages
// received and not acked are not acknowledged to the broker, which keeps
// them in the session for the next connection with the same client id. A
// second Close returns nil at once.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.closing)
	for _, p := range t.unclaimed {
		p.timer.Stop()
	}
	t.unclaimed = nil
	for _, f := range t.filters {
		if f.timer != nil {
			f.timer.Stop()
		}
	}
	t.mu.Unlock()

	var errs []error
	done := make(chan struct{})
	go func() {
		t.pumps.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("mqtt close: waiting for subscriptions: %w", ctx.Err()))
	}
	// The pumps have taken the last acks; give paho's ack loop time to
	// send their PUBACKs.
	t.mu.Lock()
	flush := time.Until(t.lastAck.Add(10 * ackInterval))
	t.mu.Unlock()
	if flush > 0 {
		select {
		case <-time.After(flush):
		case <-ctx.Done():
		}
	}
	t.session.stop() // a clean disconnect blames no packet
	if err := t.cm.Disconnect(ctx); err != nil {
		errs = append(errs, fmt.Errorf("mqtt close: disconnect: %w", err))
	}
	if err := t.session.Close(); err != nil {
		errs = append(errs, fmt.Errorf("mqtt close: session: %w", err))
	}
	return errors.Join(errs...)
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

var _ pipeline.Transport = (*Transport)(nil)
