package httpbus

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

func TestParse(t *testing.T) {
	good := []struct {
		name, json string
		check      func(t *testing.T, c Config)
	}{
		{"hub with defaults", `{"listen":"127.0.0.1:0","clients":[{"token":"a","site":"*"},{"token":"b","site":"dev-1"}]}`,
			func(t *testing.T, c Config) {
				if !c.IsHub() || c.MaxPayload != DefaultMaxPayload || len(c.Clients) != 2 {
					t.Errorf("got %+v", c)
				}
			}},
		{"hub on all interfaces", `{"listen":":7480","max_payload":16777216,"clients":[{"token":"a","site":"*"}]}`,
			func(t *testing.T, c Config) {
				if c.MaxPayload != MaxMaxPayload {
					t.Errorf("max_payload %d", c.MaxPayload)
				}
			}},
		{"client with defaults", `{"url":"http://hub:7480","token":"t"}`,
			func(t *testing.T, c Config) {
				if c.IsHub() || c.Timeout != DefaultConnectTimeout || c.MaxPayload != DefaultMaxPayload {
					t.Errorf("got %+v", c)
				}
			}},
		{"client with everything", `{"url":"https://hub.example/","token":"t","connect_timeout":"250ms","max_payload":1}`,
			func(t *testing.T, c Config) {
				if c.Timeout != 250*time.Millisecond || c.MaxPayload != 1 {
					t.Errorf("got %+v", c)
				}
			}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.json))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.check(t, c)
		})
	}

	bad := []struct {
		name, json string
		want       []string // each must be in the error
	}{
		{"empty", `{}`, []string{"listen", "url"}},
		{"unknown key", `{"url":"http://h:1","token":"t","tokn":"x"}`, []string{`"tokn"`}},
		{"wrong type", `{"url":"http://h:1","token":"t","max_payload":"1MB"}`, []string{"max_payload"}},
		{"both modes", `{"listen":":1","url":"http://h:1"}`, []string{"listen", "not both"}},
		{"listen without port", `{"listen":"localhost","clients":[{"token":"a","site":"*"}]}`, []string{"listen"}},
		{"listen bad port", `{"listen":"localhost:http","clients":[{"token":"a","site":"*"}]}`, []string{"listen", "port"}},
		{"no clients", `{"listen":":1"}`, []string{"clients"}},
		{"empty token", `{"listen":":1","clients":[{"token":"","site":"*"}]}`, []string{"clients[0].token", "required"}},
		{"duplicate token", `{"listen":":1","clients":[{"token":"a","site":"*"},{"token":"b","site":"d"},{"token":"a","site":"d2"}]}`,
			[]string{"clients[2].token", "clients[0]"}},
		{"no site", `{"listen":":1","clients":[{"token":"a"}]}`, []string{"clients[0].site", "required"}},
		{"bad site", `{"listen":":1","clients":[{"token":"a","site":"dev/1"}]}`, []string{"clients[0].site", `"/"`}},
		{"broadcast site", `{"listen":":1","clients":[{"token":"a","site":"all"}]}`, []string{"clients[0].site", "broadcast"}},
		{"client key on hub", `{"listen":":1","token":"t","connect_timeout":"1s","clients":[{"token":"a","site":"*"}]}`,
			[]string{"token: is a client key", "connect_timeout: is a client key"}},
		{"payload too small", `{"listen":":1","max_payload":-1,"clients":[{"token":"a","site":"*"}]}`, []string{"max_payload", "-1"}},
		{"payload too large", `{"url":"http://h:1","token":"t","max_payload":16777217}`, []string{"max_payload", "16777217"}},
		{"url scheme", `{"url":"ftp://h:1","token":"t"}`, []string{"url", "http://host:port"}},
		{"url without host", `{"url":"http://","token":"t"}`, []string{"url"}},
		{"url with path", `{"url":"http://h:1/v1","token":"t"}`, []string{"url", "path"}},
		{"url unparsable", `{"url":"http://h:1/%zz","token":"t"}`, []string{"url"}},
		{"no token", `{"url":"http://h:1"}`, []string{"token", "required"}},
		{"hub key on client", `{"url":"http://h:1","token":"t","clients":[{"token":"a","site":"*"}]}`, []string{"clients", "hub key"}},
		{"bad timeout", `{"url":"http://h:1","token":"t","connect_timeout":"5"}`, []string{"connect_timeout", `"5"`}},
		{"negative timeout", `{"url":"http://h:1","token":"t","connect_timeout":"-1s"}`, []string{"connect_timeout"}},
		{"not an object", `[]`, []string{"config"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			if err == nil {
				t.Fatal("Parse: got nil error")
			}
			if !errors.Is(err, pipeline.ErrInvalid) {
				t.Errorf("error %v does not wrap pipeline.ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
