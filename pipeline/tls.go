package pipeline

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
)

// ClientTLS is the TLS config of a component that connects to a server
// (the mqtt transport, the webhook trigger), under its `tls` key.
type ClientTLS struct {
	CAFile             string `yaml:"ca_file" desc:"PEM file of the CAs that sign the server's certificate (default: the system's)"`
	CertFile           string `yaml:"cert_file" desc:"PEM client certificate, for mutual TLS (AWS IoT Core)"`
	KeyFile            string `yaml:"key_file" desc:"PEM private key of cert_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" desc:"accept any server certificate: for tests only, never in production"`
	ServerName         string `yaml:"server_name" desc:"name checked in the server's certificate (default: the URL's host)"`

	_ struct{}
}

// IsSet reports whether any TLS setting is given.
func (c ClientTLS) IsSet() bool {
	return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.InsecureSkipVerify || c.ServerName != ""
}

// Build reads the CA and client certificate files, relative to dir.
func (c ClientTLS) Build(dir string) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // asked for in the config, for tests
	}
	if c.CAFile != "" {
		path := anchor(dir, c.CAFile)
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", path)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(anchor(dir, c.CertFile), anchor(dir, c.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file and tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// anchor makes a relative path relative to dir.
func anchor(dir, path string) string {
	if filepath.IsAbs(path) || dir == "" {
		return path
	}
	return filepath.Join(dir, path)
}
