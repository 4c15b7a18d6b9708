package events_test

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

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stateguard/stateguard/pkg/events"
)

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func issue(t *testing.T, cn string, parent *keyPair, isCA bool, usage x509.ExtKeyUsage) *keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA:                  isCA,
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	if !isCA {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &keyPair{cert: c, key: key, der: der}
}

func (k *keyPair) write(t *testing.T, certPath, keyPath string) {
	t.Helper()
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if keyPath == "" {
		return
	}
	b, err := x509.MarshalECPrivateKey(k.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSClientCertificateIsReReadOnReconnect connects with mutual TLS, then
// replaces the client certificate files as cert-manager would, forces a
// reconnect, and checks that the server now sees the new certificate.
func TestTLSClientCertificateIsReReadOnReconnect(t *testing.T) {
	dir := t.TempDir()
	ca := issue(t, "test-ca", nil, true, 0)
	srvPair := issue(t, "nats", ca, false, x509.ExtKeyUsageServerAuth)
	first := issue(t, "client-one", ca, false, x509.ExtKeyUsageClientAuth)
	second := issue(t, "client-two", ca, false, x509.ExtKeyUsageClientAuth)
	caPath, certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.write(t, caPath, "")
	first.write(t, certPath, keyPath)

	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(), SyncAlways: true,
		TLS: true, TLSVerify: true,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{srvPair.der}, PrivateKey: srvPair.key}},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		},
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(srv.Shutdown)

	c, err := events.Connect(t.Context(), events.ConnConfig{
		URL: srv.ClientURL(), TLSCA: caPath, TLSCert: certPath, TLSKey: keyPath,
		MaxReconnects: -1, ReconnectWait: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("connect with mTLS: %v", err)
	}
	defer c.Close(t.Context())
	peer := func() string {
		cz, err := srv.Connz(&server.ConnzOptions{Username: true})
		if err != nil || len(cz.Conns) != 1 || len(cz.Conns[0].TLSPeerCerts) == 0 {
			return ""
		}
		return cz.Conns[0].TLSPeerCerts[0].Subject
	}
	if got := peer(); got != "CN=client-one" {
		t.Fatalf("server sees %q, want CN=client-one", got)
	}
	// Rotate the files (a newer mtime) and reconnect.
	time.Sleep(10 * time.Millisecond)
	second.write(t, certPath, keyPath)
	later := time.Now().Add(time.Second)
	_ = os.Chtimes(certPath, later, later)
	if err := c.Conn().ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for peer() != "CN=client-two" {
		if time.Now().After(deadline) {
			t.Fatalf("after rotation the server sees %q, want CN=client-two", peer())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnConfigValidate(t *testing.T) {
	for name, cfg := range map[string]events.ConnConfig{
		"no url":             {},
		"cert without key":   {URL: events.DefaultURL, TLSCert: "c"},
		"creds and user too": {URL: events.DefaultURL, CredsFile: "f", User: "u"},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (events.ConnConfig{URL: events.DefaultURL}).Validate(); err != nil {
		t.Errorf("plain config rejected: %v", err)
	}
}
