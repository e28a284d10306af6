package broker

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"

	"github.com/iotod/iotod/pipeline"
)

// Defaults of Config.
const (
	DefaultListen = "127.0.0.1:1883"
	DefaultTopic  = "iotod/{site}/{channel}"

	// PacketAllowance is what max_packet allows a PUBLISH over its payload
	// (fixed header, topic, properties): the mqtt transport keeps every
	// packet within max_payload + this (its PacketOverhead).
	PacketAllowance = 16 * pipeline.Kilobyte
	// DefaultMaxPacket is max_packet when nothing sizes it: the mqtt
	// transport's default max_payload (128KB) plus PacketAllowance.
	DefaultMaxPacket = 128*pipeline.Kilobyte + PacketAllowance
	// MinMaxPacket and MaxPacketLimit bound max_packet: a CONNECT with
	// credentials must fit, and MQTT's largest packet is 256MB.
	MinMaxPacket   = 1 * pipeline.Kilobyte
	MaxPacketLimit = 256 * pipeline.Megabyte
)

// Roles of a user.
const (
	// RoleDevice acts as one site: its own topics only.
	RoleDevice = "device"
	// RoleCloud is a cloud worker: every site's topics.
	RoleCloud = "cloud"
)

// siteID is the form of a site id (as in config): usable in a topic level.
var siteID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Config is the `broker:` section of pipelines.yaml: an embedded MQTT
// broker that iotod run starts before its transports.
type Config struct {
	// Listen is the host:port the broker serves MQTT on (TLS when TLS is
	// set). It must be a loopback address unless AllowRemote is true.
	Listen string `yaml:"listen" desc:"host:port the broker listens on (MQTT, or MQTT over TLS when tls is set); loopback unless allow_remote"`
	// AllowRemote permits a Listen address other devices can reach.
	AllowRemote bool `yaml:"allow_remote" desc:"allow a listen address that is not loopback (then anonymous must be false)"`
	// TLS, when set, makes the listener serve TLS.
	TLS *TLSConfig `yaml:"tls" desc:"serve TLS: cert_file, key_file, and client_ca_file to require client certificates"`
	// Users are the credentials clients connect with: a device user acts
	// as its site, a cloud user as every site.
	Users []User `yaml:"users" desc:"credentials: {username, password, site} for a device, {username, password, role: cloud} for a cloud worker"`
	// Anonymous accepts clients that give no username and no password;
	// such a client's id is taken as its site. For local development: any
	// local process can then act as any site.
	Anonymous bool `yaml:"anonymous" desc:"accept clients without credentials, their client id taken as their site (local development only)"`
	// Persistence is a folder where sessions, subscriptions and queued
	// QoS 1 messages are kept across restarts; empty keeps them in memory.
	Persistence string `yaml:"persistence" desc:"folder keeping sessions and queued messages across restarts (relative to the config's folder); empty: memory only"`
	// Topic is the topic template the ACL enforces; it must be the one the
	// mqtt transports use. {site} and {channel} are whole levels.
	Topic string `yaml:"topic" desc:"topic template, with {site} and {channel} each a whole level; must match the mqtt transports'"`
	// MaxPacket is the largest packet a client may send. The broker reads
	// a packet's size from its fixed header and disconnects the client
	// when it is larger, before reading the rest, so a client cannot make
	// it hold more than this per connection. It is announced in CONNACK
	// (Maximum Packet Size), so a client that honours it, as the mqtt
	// transport does, refuses such a publish without sending it.
	MaxPacket pipeline.ByteSize `yaml:"max_packet" desc:"largest packet a client may send (payload, topic, properties; at least 1KB, at most 256MB): larger is refused from its header, before it is read, and the client disconnected. Default: the largest max_payload of the file's mqtt transports + 16KB, or 128KB + 16KB without any"`

	_ struct{}
}

// TLSConfig is the broker's TLS: its certificate and, optionally, the CA
// client certificates must be signed by.
type TLSConfig struct {
	CertFile string `yaml:"cert_file" desc:"PEM certificate of the broker (required)"`
	KeyFile  string `yaml:"key_file" desc:"PEM private key of cert_file (required)"`
	// ClientCAFile, when set, makes client certificates required and
	// checked against it (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file" desc:"PEM CA bundle; when set, clients must present a certificate it signed"`

	_ struct{}
}

// User is one set of credentials.
type User struct {
	Username string `yaml:"username" desc:"the MQTT username (required, unique)"`
	Password string `yaml:"password" desc:"the MQTT password (required); use ${VAR} to keep it out of the file"`
	// Site is the site a device user acts as: its identity.
	Site string `yaml:"site" desc:"the site a device user acts as (required for a device, absent for cloud)"`
	// Role is RoleDevice (default) or RoleCloud.
	Role string `yaml:"role" desc:"device (default) or cloud: a cloud worker may use every site's topics and shared subscriptions"`

	_ struct{}
}

// IsCloud reports whether u is a cloud worker.
func (u User) IsCloud() bool { return u.Role == RoleCloud }

// NewDefaultConfig returns the defaults: loopback, anonymous, in memory,
// packets of at most DefaultMaxPacket.
func NewDefaultConfig() Config {
	return Config{Listen: DefaultListen, Anonymous: true, Topic: DefaultTopic, MaxPacket: DefaultMaxPacket}
}

// Validate reports every fault of c, each naming its field. The faults
// wrap pipeline.ErrInvalid.
func (c Config) Validate() error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fieldError{field: field, msg: fmt.Sprintf(format, args...)})
	}
	if err := checkListen(c.Listen, c.AllowRemote); err != nil {
		fail("listen", "%q %v", c.Listen, err)
	}
	if c.Persistence != "" {
		if err := checkPersistence(); err != nil { // persistence*.go
			fail("persistence", "%q: the broker keeps sessions in badger: %v; leave persistence empty (sessions in memory) on a 32-bit build", c.Persistence, err)
		}
	}
	if c.AllowRemote && c.Anonymous {
		fail("anonymous", "must be false with allow_remote: anyone on the network could act as any site")
	}
	if t := c.TLS; t != nil {
		if t.CertFile == "" {
			fail("tls.cert_file", "is required with tls")
		}
		if t.KeyFile == "" {
			fail("tls.key_file", "is required with tls")
		}
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		at := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Username == "":
			fail(at+".username", "is required")
		case seen[u.Username]:
			fail(at+".username", "%q is listed twice", u.Username)
		}
		seen[u.Username] = true
		if u.Password == "" {
			fail(at+".password", "is required")
		}
		switch u.Role {
		case "", RoleDevice:
			if err := checkSite(u.Site); err != nil {
				fail(at+".site", "%v", err)
			}
		case RoleCloud:
			if u.Site != "" {
				fail(at+".site", "a cloud user acts as every site: leave site out")
			}
		default:
			fail(at+".role", "%q is not one of %s, %s", u.Role, RoleDevice, RoleCloud)
		}
	}
	if _, err := ParseTemplate(c.Topic); err != nil {
		fail("topic", "%v", err)
	}
	if c.MaxPacket < MinMaxPacket || c.MaxPacket > MaxPacketLimit {
		fail("max_packet", "must be between %s and %s, got %d", MinMaxPacket, MaxPacketLimit, int64(c.MaxPacket))
	}
	return errors.Join(errs...)
}

// checkSite checks a device's site id.
func checkSite(site string) error {
	switch {
	case site == "":
		return errors.New("is required for a device user (or set role: cloud)")
	case site == pipeline.Broadcast:
		return fmt.Errorf("%q is the broadcast site, not a device", site)
	case !siteID.MatchString(site):
		return fmt.Errorf("%q must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", site)
	}
	return nil
}

// checkListen checks that addr is host:port, on loopback unless remote.
func checkListen(addr string, remote bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("has a bad port: want 0 to 65535")
	}
	if !remote && !isLoopback(host) {
		return errors.New("is not a loopback address (127.0.0.1, ::1 or localhost): set allow_remote: true to serve other hosts")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// fieldError is a fault of one config field.
type fieldError struct{ field, msg string }

func (e fieldError) Error() string { return e.field + ": " + e.msg }
func (e fieldError) Unwrap() error { return pipeline.ErrInvalid }
