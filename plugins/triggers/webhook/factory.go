// Package webhook is the `webhook` trigger: it POSTs the changes a
// pipeline applied as JSON to a URL, once per batch or once per change,
// optionally signed with HMAC-SHA256. Within one call it retries network
// errors, timeouts, 408, 429 and 5xx with backoff; a 4xx is a permanent
// failure. A failed call returns an error, so iotod's trigger queue retries
// the batch later.
package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the trigger's type in pipelines.yaml.
const TypeName = "webhook"

// NewFactory returns the webhook trigger's factory.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindTrigger, TypeName,
		"POSTs the applied changes as JSON to a URL, signed with HMAC-SHA256 if given a secret",
		NewDefaultConfig, create)
}

func create(_ context.Context, set pipeline.Settings, c Config) (any, error) {
	u, err := url.Parse(c.URL)
	if err != nil { // Validate parsed it already
		return nil, fmt.Errorf("%w: url: %v", pipeline.ErrInvalid, err)
	}
	secret := c.Secret
	if c.SecretEnv != "" {
		v, ok := os.LookupEnv(c.SecretEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: secret_env: the environment variable %s is not set", pipeline.ErrInvalid, c.SecretEnv)
		}
		secret = v
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if u.Scheme == "https" {
		tc, err := c.TLS.Build(set.Dir)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", pipeline.ErrInvalid, err)
		}
		transport.TLSClientConfig = tc
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	headers := http.Header{}
	for k, v := range c.Headers {
		headers.Set(k, v)
	}
	headers.Set("Content-Type", "application/json")
	if headers.Get("User-Agent") == "" {
		headers.Set("User-Agent", "iotod-webhook")
	}
	return &Trigger{
		log:    log,
		site:   set.Site,
		filter: c.Filter,
		url:    c.URL,
		target: safeURL(u),
		client: &http.Client{
			Transport: transport,
			// A redirected POST would become a GET without the changes:
			// the 3xx is returned, and fails the delivery.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		headers:       headers,
		secret:        []byte(secret),
		timeout:       c.Timeout,
		maxRetries:    c.MaxRetries,
		retryDelay:    c.RetryDelay,
		maxRetryDelay: c.MaxRetryDelay,
		perChange:     c.PerChange,
		jitter:        fullJitter,
	}, nil
}

// safeURL is u as errors and logs show it: without credentials, query
// or fragment, which may hold tokens.
func safeURL(u *url.URL) string {
	v := *u
	v.User, v.RawQuery, v.ForceQuery, v.Fragment, v.RawFragment = nil, "", false, "", ""
	return v.String()
}
