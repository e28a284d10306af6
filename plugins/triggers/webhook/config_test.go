package webhook

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
)

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error; none: valid
	}{
		{"defaults and a url", `url: https://hooks.example.com/iotod`, nil},
		{"every key", `
url: https://hooks.example.com/iotod
headers: {Authorization: Bearer x}
timeout: 3s
max_retries: 0
retry_delay: 1s
max_retry_delay: 1s
secret_env: HOOK_SECRET
per_change: true
tls: {ca_file: ca.pem, cert_file: c.pem, key_file: k.pem, server_name: hooks.internal}
models: [Reading]
ops: [upsert]
origin: local`, nil},
		{"no url", `timeout: 1s`, []string{"url: must be set"}},
		{"bad scheme", `url: ftp://x/y`, []string{"url: \"ftp://x/y\": scheme must be http or https"}},
		{"no host", `url: "http:///path"`, []string{"has no host"}},
		{"credentials", `url: https://me:pw@x.test/`, []string{"give credentials in headers"}},
		{"tls on http", `{url: http://x.test/, tls: {insecure_skip_verify: true}}`, []string{"tls: given, but url"}},
		{"half a key pair", `{url: https://x.test/, tls: {cert_file: c.pem}}`, []string{"tls: cert_file and key_file go together"}},
		{"own header", `{url: https://x.test/, headers: {x-iotod-signature: forged}}`, []string{"headers.x-iotod-signature: is set by iotod"}},
		{"bad header", `{url: https://x.test/, headers: {"a b": "1", Ok: "x\ny"}}`, []string{`headers: "a b" is not a header name`, "headers.Ok: holds a line break"}},
		{"numbers", `{url: https://x.test/, timeout: 0s, max_retries: -1, retry_delay: 2s, max_retry_delay: 1s}`,
			[]string{"timeout: must be positive", "max_retries: must not be negative", "max_retry_delay: must be at least retry_delay (2s)"}},
		{"two secrets", `{url: https://x.test/, secret: a, secret_env: B}`, []string{"secret_env: give secret or secret_env, not both"}},
		{"filter keys", `{url: https://x.test/, origin: mine}`, []string{`origin: "mine"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := NewFactory().NewDefaultConfig().(*Config)
			dec := yaml.NewDecoder(bytes.NewReader([]byte(tc.yaml)))
			dec.KnownFields(true)
			require.NoError(t, dec.Decode(cfg))
			err := cfg.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, pipeline.ErrInvalid)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	f := NewFactory()
	require.Equal(t, pipeline.KindTrigger, f.Kind())
	require.Equal(t, "webhook", f.Type())
	cfg := f.NewDefaultConfig().(*Config)
	require.Equal(t, 5*time.Second, cfg.Timeout)
	require.Equal(t, 2, cfg.MaxRetries) // 3 tries of 5s and the backoff fit in the trigger queue's 30s call
	require.Equal(t, 200*time.Millisecond, cfg.RetryDelay)
	require.Equal(t, 5*time.Second, cfg.MaxRetryDelay)
	require.Equal(t, "both", cfg.Filter.Origin)
}
