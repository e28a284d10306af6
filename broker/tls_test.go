package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// authority is a test CA.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newAuthority(t *testing.T, name string) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf certificate for 127.0.0.1 usable by servers and
// clients, returned as PEM certificate and key.
func (a *authority) issue(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

// TestMutualTLS checks that with client_ca_file a client needs a
// certificate signed by that CA, and still its credentials.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := newAuthority(t, "iotod test CA"), newAuthority(t, "another CA")
	serverCert, serverKey := ca.issue(t, "broker")
	cfg := withUsers()
	cfg.TLS = &TLSConfig{CertFile: writeFile(t, dir, "broker.pem", serverCert), KeyFile: writeFile(t, dir, "broker.key", serverKey),
		ClientCAFile: writeFile(t, dir, "ca.pem", ca.pem)}
	b := startBroker(t, cfg, nil)

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	clientTLS := func(a *authority) *tls.Config {
		c := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if a != nil {
			certPEM, keyPEM := a.issue(t, "d1")
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			require.NoError(t, err)
			c.Certificates = []tls.Certificate{pair}
		}
		return c
	}

	o := d1Opts
	o.tls = clientTLS(ca)
	d1 := mustDial(t, b.Addr(), o)
	require.NoError(t, d1.publish(t, "iotod/d1/up", "over tls", 1))

	for name, c := range map[string]*tls.Config{"no certificate": clientTLS(nil), "another CA": clientTLS(other)} {
		o.tls = c
		_, _, err := dial(t, b.Addr(), o)
		assert.Error(t, err, name)
	}
	o = opts{id: "d1", user: "d1", pass: "wrong", tls: clientTLS(ca)}
	_, _, err := dial(t, b.Addr(), o)
	assert.Error(t, err, "a certificate does not replace the password")
	_, _, err = dial(t, b.Addr(), d1Opts)
	assert.Error(t, err, "plain MQTT on a TLS listener")

	cfg.TLS.ClientCAFile = writeFile(t, dir, "empty.pem", []byte("nothing"))
	cfg.Listen = "127.0.0.1:0"
	_, err = Start(t.Context(), cfg, nil, nil)
	assert.ErrorContains(t, err, "no PEM certificate")
	cfg.TLS.KeyFile = filepath.Join(dir, "missing.key")
	_, err = Start(t.Context(), cfg, nil, nil)
	assert.ErrorContains(t, err, "broker tls")
}
