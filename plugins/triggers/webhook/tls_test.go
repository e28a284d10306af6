package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

// writePEM writes one PEM block to dir/name.
func writePEM(t *testing.T, dir, name, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

func TestTLSWithCAFile(t *testing.T) {
	rec := &recorder{replies: []func(http.ResponseWriter, *http.Request){status(200, "")}}
	srv := httptest.NewTLSServer(rec)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	writePEM(t, dir, "ca.pem", "CERTIFICATE", srv.Certificate().Raw)
	set := pipeline.Settings{Dir: dir}

	tr := newTrigger(t, set, "{url: "+srv.URL+", tls: {ca_file: ca.pem}}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	require.Len(t, rec.requests(), 1)

	// httptest's certificate names example.com too.
	tr = newTrigger(t, set, "{url: "+srv.URL+", tls: {ca_file: ca.pem, server_name: example.com}}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))

	tr = newTrigger(t, set, "{url: "+srv.URL+", max_retries: 0, tls: {ca_file: ca.pem, server_name: other.test}}")
	require.ErrorContains(t, tr.Fire(t.Context(), "ingest", changes()), "other.test")

	tr = newTrigger(t, set, "{url: "+srv.URL+", max_retries: 0}")
	require.ErrorContains(t, tr.Fire(t.Context(), "ingest", changes()), "certificate", "not signed by a CA the system trusts")

	tr = newTrigger(t, set, "{url: "+srv.URL+", tls: {insecure_skip_verify: true}}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	require.Len(t, rec.requests(), 3)

	_, err := createFrom(t, set, "{url: "+srv.URL+", tls: {ca_file: missing.pem}}")
	require.ErrorIs(t, err, pipeline.ErrInvalid)
	require.ErrorContains(t, err, "tls.ca_file: ")
}

func TestTLSClientCertificate(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "pump-7"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	writePEM(t, dir, "client.pem", "CERTIFICATE", der)
	writePEM(t, dir, "client.key", "EC PRIVATE KEY", keyDER)
	clientCert, err := x509.ParseCertificate(der)
	require.NoError(t, err)

	peers := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peers <- r.TLS.PeerCertificates[0].Subject.CommonName
	}))
	pool := x509.NewCertPool()
	pool.AddCert(clientCert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	writePEM(t, dir, "ca.pem", "CERTIFICATE", srv.Certificate().Raw)
	set := pipeline.Settings{Dir: dir}

	tr := newTrigger(t, set, "{url: "+srv.URL+", tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client.key}}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	require.Equal(t, "pump-7", <-peers)

	tr = newTrigger(t, set, "{url: "+srv.URL+", max_retries: 0, tls: {ca_file: ca.pem}}")
	require.Error(t, tr.Fire(t.Context(), "ingest", changes()), "no client certificate, no delivery")
}
