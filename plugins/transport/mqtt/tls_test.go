package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf certificate for a server (at 127.0.0.1) or a client;
// it returns the certificate and key as PEM.
func (ca *testCA) issue(t *testing.T, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestMutualTLS runs a broker that requires client certificates signed by
// its CA (the AWS IoT Core way). A transport with the CA and a client
// certificate, given as paths relative to the config's folder, connects
// and round-trips a message; one without a client certificate, or trusting
// another CA, never connects.
func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t, "iotod test CA")
	srvCert, srvKey := ca.issue(t, "broker", true)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	b := startMochi(t, "", &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})

	o := newOpener(t, b.url, nil)
	certs := filepath.Join(o.base, "certs")
	cliCert, cliKey := ca.issue(t, "pump-7", false)
	other := newTestCA(t, "another CA")
	for name, data := range map[string][]byte{"ca.pem": ca.pem, "other-ca.pem": other.pem, "device.pem.crt": cliCert, "device.private.key": cliKey} {
		if err := os.MkdirAll(certs, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(certs, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	o.tune = func(c *Config) {
		c.TLS = TLSConfig{CAFile: "certs/ca.pem", CertFile: "certs/device.pem.crt", KeyFile: "certs/device.private.key"}
	}
	tr := o.open(t, "mtls")
	in := subscribe(t, tr, pipeline.ChanDown, "pump-7")
	m := message.NewMessage("over-tls", []byte("hello"))
	publish(t, tr, pipeline.ChanDown, "pump-7", m)
	got := recv(t, in, 5*time.Second)
	if got.UUID != "over-tls" || string(got.Payload) != "hello" {
		t.Errorf("got %s %q, want over-tls \"hello\"", got.UUID, got.Payload)
	}
	got.Ack()

	for role, tlsCfg := range map[string]TLSConfig{
		"nocert":   {CAFile: "certs/ca.pem"},
		"wrong-ca": {CAFile: "certs/other-ca.pem", CertFile: "certs/device.pem.crt", KeyFile: "certs/device.private.key"},
	} {
		o.tune = func(c *Config) { c.TLS = tlsCfg; c.ConnectTimeout = time.Second }
		bad := o.open(t, role)
		ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
		err := bad.Publish(ctx, pipeline.ChanDown, "pump-7", message.NewMessage("x", nil))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || bad.Connected() {
			t.Errorf("%s: publish got %v (connected %v), want no connection", role, err, bad.Connected())
		}
	}

	// A missing file fails at creation, naming the key.
	o.tune = func(c *Config) { c.TLS = TLSConfig{CAFile: "certs/missing.pem"} }
	cfg := testConfig(b.url, "missing")
	o.tune(&cfg)
	if _, err := New(cfg, pipeline.Settings{Site: "s", Dir: o.base}); err == nil || !containsAll(err.Error(), "tls.ca_file", "missing.pem") {
		t.Errorf("missing CA file: got %v", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
