package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/triggers/filter"
)

// Defaults of Config.
const (
	DefaultTimeout       = 5 * time.Second
	DefaultMaxRetries    = 2
	DefaultRetryDelay    = 200 * time.Millisecond
	DefaultMaxRetryDelay = 5 * time.Second
)

// Config configures the webhook trigger.
type Config struct {
	// URL is where the changes are POSTed.
	URL string `yaml:"url" desc:"where the changes are POSTed: an http:// or https:// URL (required)"`
	// Headers are added to every request.
	Headers map[string]string `yaml:"headers" desc:"headers added to every request, such as Authorization (use ${VAR} to keep secrets out of the file)"`
	// Timeout bounds one request, from sending to reading the response.
	Timeout time.Duration `yaml:"timeout" desc:"bound of one request: connecting, sending, and reading the response"`
	// MaxRetries is how many times one delivery is retried within a call,
	// on network errors, timeouts, 408, 429 and 5xx.
	MaxRetries int `yaml:"max_retries" desc:"retries of a request within one delivery, on network errors, timeouts, 408, 429 and 5xx (0: none)"`
	// RetryDelay is the first backoff ceiling; it doubles per retry.
	RetryDelay time.Duration `yaml:"retry_delay" desc:"first backoff ceiling: a retry waits a random time up to it, doubling per retry"`
	// MaxRetryDelay caps the backoff and any Retry-After.
	MaxRetryDelay time.Duration `yaml:"max_retry_delay" desc:"longest wait before a retry, Retry-After included"`
	// Secret signs each request (HMAC-SHA256 of "<timestamp>.<body>").
	Secret string `yaml:"secret" desc:"key signing each request in X-Iotod-Signature (HMAC-SHA256 of \"<X-Iotod-Timestamp>.<body>\"); empty: unsigned"`
	// SecretEnv names an environment variable holding the secret.
	SecretEnv string `yaml:"secret_env" desc:"name of an environment variable holding the secret, instead of secret"`
	// PerChange sends one request per change instead of one per batch.
	PerChange bool `yaml:"per_change" desc:"one request per change, in order, with {\"pipeline\", \"change\"}, instead of one per batch with {\"pipeline\", \"changes\"}"`
	// TLS configures https:// URLs.
	TLS TLSConfig `yaml:"tls" desc:"TLS settings for https:// URLs"`
	// Filter selects the changes delivered.
	Filter filter.Filter `yaml:",inline"`

	_ struct{}
}

// TLSConfig is the webhook's TLS, under its tls key.
type TLSConfig = pipeline.ClientTLS

// NewDefaultConfig returns the defaults; URL is left for the user.
func NewDefaultConfig() Config {
	return Config{
		Timeout:       DefaultTimeout,
		MaxRetries:    DefaultMaxRetries,
		RetryDelay:    DefaultRetryDelay,
		MaxRetryDelay: DefaultMaxRetryDelay,
		Filter:        filter.NewDefault(),
	}
}

// ownHeaders are set by the trigger; headers may not set them.
var ownHeaders = []string{"Content-Type", "Content-Length", "Host", headerSignature, headerTimestamp}

// Validate reports every fault of c, each naming its key. The faults wrap
// pipeline.ErrInvalid.
func (c *Config) Validate() error {
	var errs []error
	fault := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", pipeline.ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	if c.URL == "" {
		fault("url", "must be set: an http:// or https:// URL")
	} else if u, err := url.Parse(c.URL); err != nil {
		fault("url", "%s is not a URL", pipeline.Quote(c.URL))
	} else {
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			fault("url", "%s: scheme must be http or https", pipeline.Quote(c.URL))
		case u.Host == "":
			fault("url", "%s has no host", pipeline.Quote(c.URL))
		case u.User != nil:
			fault("url", "%s: give credentials in headers (Authorization), not in the URL", pipeline.Quote(u.Redacted()))
		case u.Scheme == "http" && c.TLS.IsSet():
			fault("tls", "given, but url %s is not https", pipeline.Quote(c.URL))
		}
	}
	for k, v := range c.Headers {
		switch {
		case !validHeaderName(k):
			fault("headers", "%q is not a header name", k)
		case strings.ContainsAny(v, "\r\n\x00"):
			fault("headers."+k, "holds a line break or NUL")
		}
		if slices.Contains(ownHeaders, http.CanonicalHeaderKey(k)) {
			fault("headers."+k, "is set by iotod")
		}
	}
	if c.Timeout <= 0 {
		fault("timeout", "must be positive, got %s", c.Timeout)
	}
	if c.MaxRetries < 0 {
		fault("max_retries", "must not be negative, got %d", c.MaxRetries)
	}
	if c.RetryDelay <= 0 {
		fault("retry_delay", "must be positive, got %s", c.RetryDelay)
	}
	if c.MaxRetryDelay < c.RetryDelay {
		fault("max_retry_delay", "must be at least retry_delay (%s), got %s", c.RetryDelay, c.MaxRetryDelay)
	}
	if c.Secret != "" && c.SecretEnv != "" {
		fault("secret_env", "give secret or secret_env, not both")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		fault("tls", "cert_file and key_file go together")
	}
	errs = append(errs, c.Filter.Validate())
	return errors.Join(errs...)
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
