package mqtt

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// Defaults of Config.
const (
	DefaultURL            = "mqtt://127.0.0.1:1883"
	DefaultTopic          = "iotod/{site}/{channel}"
	DefaultShareGroup     = "iotod"
	DefaultMaxPayload     = 128 * pipeline.Kilobyte
	DefaultKeepAlive      = 30 * time.Second
	DefaultSessionExpiry  = 24 * time.Hour
	DefaultConnectTimeout = 10 * time.Second
	DefaultPublishTimeout = 10 * time.Second
	DefaultReconnectMin   = 250 * time.Millisecond
	DefaultReconnectMax   = 30 * time.Second

	// MaxPayloadLimit is the largest max_payload accepted: MQTT's largest
	// packet is 256MB.
	MaxPayloadLimit = 256 * pipeline.Megabyte
)

// Config is the user configuration of an mqtt transport.
type Config struct {
	URL      string    `yaml:"url" desc:"broker address: mqtt:// or tcp:// (plain), mqtts:// or ssl:// (TLS); the port defaults to 1883 or 8883"`
	ClientID string    `yaml:"client_id" desc:"MQTT client id, stable across restarts and unique per process; {site} is replaced by the site (default: the site)"`
	Username string    `yaml:"username" desc:"user name sent in CONNECT (optional)"`
	Password string    `yaml:"password" desc:"password sent in CONNECT (optional; use ${VAR} to keep it out of the file)"`
	TLS      TLSConfig `yaml:"tls" desc:"TLS settings for mqtts:// and ssl:// URLs"`

	KeepAlive     time.Duration `yaml:"keepalive" desc:"MQTT keepalive (1s to 65535s)"`
	SessionExpiry time.Duration `yaml:"session_expiry" desc:"how long the broker keeps the session (subscriptions, unacknowledged messages) while disconnected; 0 ends it on disconnect"`
	SessionDir    string        `yaml:"session_dir" desc:"folder of the client's session store (messages sent and not yet acknowledged); default data/mqtt-session/<client_id> beside the config"`
	CleanStart    bool          `yaml:"clean_start" desc:"drop the broker's and the local session on the first connection"`

	Topic      string            `yaml:"topic" desc:"topic template with {site} and {channel}, each a whole topic level"`
	ShareGroup string            `yaml:"share_group" desc:"shared subscription group for subscriptions to every site ($share/<group>/...); empty subscribes without sharing"`
	MaxPayload pipeline.ByteSize `yaml:"max_payload" desc:"largest payload published: 512, 10KB, 128KB (AWS IoT Core's limit), at most 256MB"`
	// MetadataKeys are the metadata keys a received message keeps: every
	// other user property (but the UUID) is dropped and counted, since a
	// publisher controls them. The site always comes from the topic.
	MetadataKeys []string `yaml:"metadata_keys" desc:"metadata keys kept on received messages (user properties of those names); others are dropped and counted (default: none, iotod uses only the UUID and the site)"`

	ConnectTimeout time.Duration `yaml:"connect_timeout" desc:"bound of one connection attempt, and of Subscribe's wait for a connection"`
	PublishTimeout time.Duration `yaml:"publish_timeout" desc:"how long a publish, subscribe or unsubscribe waits for the broker's acknowledgement"`
	ReconnectMin   time.Duration `yaml:"reconnect_min" desc:"shortest wait before reconnecting after a failed attempt"`
	ReconnectMax   time.Duration `yaml:"reconnect_max" desc:"longest wait between reconnect attempts (waits grow from reconnect_min, with jitter)"`

	// ignoreBrokerMax makes the transport act as a client that does not
	// know the broker's maximum packet size (tests of the session guard).
	ignoreBrokerMax bool

	_ struct{}
}

// TLSConfig is the transport's TLS, under its tls key.
type TLSConfig = pipeline.ClientTLS

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{
		URL:            DefaultURL,
		KeepAlive:      DefaultKeepAlive,
		SessionExpiry:  DefaultSessionExpiry,
		Topic:          DefaultTopic,
		ShareGroup:     DefaultShareGroup,
		MaxPayload:     DefaultMaxPayload,
		ConnectTimeout: DefaultConnectTimeout,
		PublishTimeout: DefaultPublishTimeout,
		ReconnectMin:   DefaultReconnectMin,
		ReconnectMax:   DefaultReconnectMax,
	}
}

// clientIDPattern is what a client id may hold once {site} is taken out:
// it names the session folder too.
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]*$`)

// Validate reports every fault of c, each naming its field. The faults
// wrap pipeline.ErrInvalid.
func (c Config) Validate() error {
	var errs []error
	fault := func(field, format string, args ...any) {
		errs = append(errs, fieldError{field: field, msg: fmt.Sprintf(format, args...)})
	}
	tlsScheme, err := parseURL(c.URL)
	if err != nil {
		fault("url", "%v", err)
	}
	if len(c.ClientID) > 128 {
		fault("client_id", "at most 128 characters, got %d", len(c.ClientID))
	}
	if bare := stripSite(c.ClientID); !clientIDPattern.MatchString(bare) || bare == "." || bare == ".." {
		fault("client_id", "%q: use letters, digits, '.', '_', ':', '-' and {site}", c.ClientID)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		fault("tls", "cert_file and key_file go together")
	}
	if err == nil && !tlsScheme && c.TLS.IsSet() {
		fault("tls", "given, but url %q is not TLS (use mqtts://)", c.URL)
	}
	if c.KeepAlive < time.Second || c.KeepAlive > math.MaxUint16*time.Second {
		fault("keepalive", "must be between 1s and 65535s, got %s", c.KeepAlive)
	}
	if c.SessionExpiry < 0 || c.SessionExpiry > math.MaxUint32*time.Second {
		fault("session_expiry", "must be between 0 and %s, got %s", math.MaxUint32*time.Second, c.SessionExpiry)
	}
	if _, err := parseTemplate(c.Topic); err != nil {
		fault("topic", "%v", err)
	}
	if strings.ContainsAny(c.ShareGroup, "/+# ") {
		fault("share_group", "%q must not hold '/', '+', '#' or spaces", c.ShareGroup)
	} else if err := checkString(c.ShareGroup, 128); err != nil {
		fault("share_group", "%s: %v", quoted(c.ShareGroup), err)
	}
	if len(c.MetadataKeys) > MaxMetadata {
		fault("metadata_keys", "%d keys, at most %d", len(c.MetadataKeys), MaxMetadata)
	}
	for i, k := range c.MetadataKeys {
		switch err := checkString(k, MaxMetaKeyLen); {
		case k == "":
			fault(fmt.Sprintf("metadata_keys[%d]", i), "empty")
		case err != nil:
			fault(fmt.Sprintf("metadata_keys[%d]", i), "%s: %v", quoted(k), err)
		case k == propUUID || k == pipeline.MetaSite:
			fault(fmt.Sprintf("metadata_keys[%d]", i), "%q is the transport's own (the UUID, or the site from the topic)", k)
		}
	}
	if c.MaxPayload < 1 || c.MaxPayload > MaxPayloadLimit {
		fault("max_payload", "must be between 1 and %s, got %d", MaxPayloadLimit, int64(c.MaxPayload))
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"connect_timeout", c.ConnectTimeout}, {"publish_timeout", c.PublishTimeout}, {"reconnect_min", c.ReconnectMin}} {
		if d.v <= 0 {
			fault(d.field, "must be positive, got %s", d.v)
		}
	}
	if c.ReconnectMax < c.ReconnectMin {
		fault("reconnect_max", "must be at least reconnect_min (%s), got %s", c.ReconnectMin, c.ReconnectMax)
	}
	return errors.Join(errs...)
}

// MQTTMaxPayload is max_payload: the config loader sizes the embedded
// broker's max_packet after the largest of a file's mqtt transports.
func (c *Config) MQTTMaxPayload() pipeline.ByteSize { return c.MaxPayload }

// parseURL checks a broker URL and says whether it uses TLS.
func parseURL(s string) (tlsScheme bool, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return false, fmt.Errorf("%q is not a URL", s)
	}
	switch u.Scheme {
	case "mqtt", "tcp":
	case "mqtts", "ssl":
		tlsScheme = true
	default:
		return false, fmt.Errorf("%q: scheme must be mqtt, tcp, mqtts or ssl", s)
	}
	if u.Hostname() == "" {
		return false, fmt.Errorf("%q has no host", s)
	}
	if u.User != nil {
		return false, fmt.Errorf("%q: give credentials in username and password, not in the URL", u.Redacted())
	}
	return tlsScheme, nil
}

// stripSite removes the {site} and ${site} placeholders.
func stripSite(s string) string {
	return strings.NewReplacer("${site}", "", "{site}", "").Replace(s)
}

// expandSite replaces the {site} and ${site} placeholders with site.
func expandSite(s, site string) string {
	return strings.NewReplacer("${site}", site, "{site}", site).Replace(s)
}

// fieldError is a fault of one config field.
type fieldError struct{ field, msg string }

func (e fieldError) Error() string { return e.field + ": " + e.msg }
func (e fieldError) Unwrap() error { return pipeline.ErrInvalid }
