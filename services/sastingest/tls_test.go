package main

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/tlstest"
)

// TestServesHTTPS runs the ingest with --tls-cert-file and --tls-key-file:
// the TLS conformance (handshake against the CA, TLS 1.1 and plain HTTP
// refused, a rotated certificate served to the next connection), then a
// SARIF upload over HTTPS on the rotated certificate is accepted.
func TestServesHTTPS(t *testing.T) {
	f := tlstest.New(t)
	base := startService(t, f.Args()...)
	addr := strings.TrimPrefix(base, "http://")
	tlstest.Check(t, f, addr) // ends with the certificate rotated

	log, err := os.ReadFile("testdata/gosec-sampleapp.sarif")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://"+addr+"/v1/sarif?repository=acme/shop", bytes.NewReader(log))
	req.Header.Set("Authorization", "Bearer t0ken")
	req.Header.Set("Content-Type", "application/sarif+json")
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload over HTTPS: %d", resp.StatusCode)
	}
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(f.Serial) != 0 {
		t.Errorf("upload served by serial %x, want the rotated %x", got, f.Serial)
	}
}
