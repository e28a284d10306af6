package httpbus

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

const (
	// DefaultMaxPayload is max_payload when the config has none.
	DefaultMaxPayload = 256 << 10
	// MaxMaxPayload is the largest max_payload accepted.
	MaxMaxPayload = 16 << 20
	// DefaultConnectTimeout is connect_timeout when the config has none.
	DefaultConnectTimeout = 5 * time.Second
	// AnySite is the site of a cloud worker's token: every site, every
	// channel.
	AnySite = "*"
)

// Config is the plugin's config: the `config` mapping of the YAML. Either
// Listen (a hub) or URL (a client of a hub) is set.
type Config struct {
	// Listen is the hub's host:port.
	Listen string `json:"listen"`
	// Clients are the tokens the hub accepts.
	Clients []ClientConfig `json:"clients"`

	// URL is the hub a client talks to: http://host:port.
	URL string `json:"url"`
	// Token is the client's bearer token.
	Token string `json:"token"`
	// ConnectTimeout is how long Subscribe waits for the hub, as a Go
	// duration ("5s").
	ConnectTimeout string `json:"connect_timeout"`

	// MaxPayload is the largest payload in bytes (default 256 KiB).
	MaxPayload int `json:"max_payload"`

	// Timeout is ConnectTimeout parsed, set by Parse.
	Timeout time.Duration `json:"-"`
}

// ClientConfig is one token a hub accepts and the site it is bound to.
type ClientConfig struct {
	Token string `json:"token"`
	// Site is the device's site, or "*" for a cloud worker.
	Site string `json:"site"`
}

// IsHub reports whether c configures a hub.
func (c Config) IsHub() bool { return c.Listen != "" }

// Parse reads a config strictly (unknown keys are errors), fills in the
// defaults and checks it; each fault names its key and wraps
// pipeline.ErrInvalid.
func Parse(b []byte) (Config, error) {
	var c Config
	if err := sdk.Decode(b, &c); err != nil {
		return c, configError(err.Error())
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, configError(key+": "+fmt.Sprintf(format, args...)))
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.MaxPayload < 1 || c.MaxPayload > MaxMaxPayload {
		bad("max_payload", "must be between 1 and %d bytes, got %d", MaxMaxPayload, c.MaxPayload)
	}
	switch {
	case c.Listen == "" && c.URL == "":
		bad("listen", "give listen (a hub) or url (a client of a hub)")
	case c.Listen != "" && c.URL != "":
		bad("listen", "give listen (a hub) or url (a client), not both")
	case c.IsHub():
		c.checkHub(bad)
	default:
		c.checkClient(bad)
	}
	return c, errors.Join(errs...)
}

// configError is a fault of the config; it wraps pipeline.ErrInvalid.
type configError string

func (e configError) Error() string { return string(e) }
func (e configError) Unwrap() error { return pipeline.ErrInvalid }

func (c *Config) checkHub(bad func(key, format string, args ...any)) {
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port: %v", c.Listen, err)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("listen", "port %q is not a number from 0 to 65535", port)
	}
	if c.Token != "" {
		bad("token", "is a client key; a hub (listen) takes clients")
	}
	if c.ConnectTimeout != "" {
		bad("connect_timeout", "is a client key; a hub (listen) takes clients")
	}
	if len(c.Clients) == 0 {
		bad("clients", "a hub needs at least one {token, site}")
	}
	seen := map[string]int{}
	for i, cl := range c.Clients {
		key := fmt.Sprintf("clients[%d]", i)
		switch {
		case cl.Token == "":
			bad(key+".token", "required")
		case seen[cl.Token] > 0:
			bad(key+".token", "same token as clients[%d]", seen[cl.Token]-1)
		default:
			seen[cl.Token] = i + 1
		}
		switch {
		case cl.Site == "":
			bad(key+".site", `required: a device's site, or "*" for a cloud worker`)
		case cl.Site == pipeline.Broadcast:
			bad(key+".site", "%q is the broadcast site, not a device's", cl.Site)
		case cl.Site != AnySite && pipeline.ValidSite(cl.Site) != nil:
			bad(key+".site", "%v", pipeline.ValidSite(cl.Site))
		}
	}
}

func (c *Config) checkClient(bad func(key, format string, args ...any)) {
	if len(c.Clients) > 0 {
		bad("clients", "is a hub key; a client (url) takes token")
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		bad("url", "%v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		bad("url", "%q: want http://host:port", c.URL)
	case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		bad("url", "%q: want http://host:port, without path, query or user", c.URL)
	}
	if c.Token == "" {
		bad("token", "required: the bearer token the hub knows this client by")
	}
	c.Timeout = DefaultConnectTimeout
	if c.ConnectTimeout != "" {
		d, err := time.ParseDuration(c.ConnectTimeout)
		if err != nil || d <= 0 {
			bad("connect_timeout", "%q is not a positive duration (like 5s)", c.ConnectTimeout)
		}
		c.Timeout = d
	}
}
