package devcert

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"
)

// TestIssuedCertificateVerifiesForItsHosts: a served certificate verifies
// against the CA for its IP and DNS name, not for another host, and the
// written files load as a key pair.
func TestIssuedCertificateVerifiesForItsHosts(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Issue("sastingest", []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := p.Write(t.TempDir(), "sastingest")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber.Cmp(p.Serial) != 0 {
		t.Errorf("serial %s, want %s", leaf.SerialNumber, p.Serial)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.PEM) {
		t.Fatal("the CA's PEM holds no certificate")
	}
	for host, ok := range map[string]bool{"127.0.0.1": true, "localhost": true, "example.com": false} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host})
		if (err == nil) != ok {
			t.Errorf("verify for %s: %v, want ok=%t", host, err, ok)
		}
	}
	other, err := NewCA("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherRoots := x509.NewCertPool()
	otherRoots.AppendCertsFromPEM(other.PEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: otherRoots, DNSName: "localhost"}); err == nil {
		t.Error("the certificate verifies against another CA")
	}
}
