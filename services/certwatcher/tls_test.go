package main

import (
	"net/http"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/harness/tlstest"
)

// TestServesHTTPS runs certwatcher with --tls-cert-file and --tls-key-file
// and a client CA: the TLS conformance, and /metrics only to a scraper with
// a client certificate.
func TestServesHTTPS(t *testing.T) {
	srv := natstest.Run(t)
	f := tlstest.New(t)
	args := append([]string{"--nats-url", srv.ClientURL(), "--watch-dir", t.TempDir(), "--dir-rescan", "0", "--tls-client-ca-file", f.CAFile}, f.Args()...)
	addr := running(t, args...)
	tlstest.Check(t, f, addr)

	for _, c := range []struct {
		name   string
		client *http.Client
		want   int
	}{
		{"without a client certificate", f.Client(), http.StatusForbidden},
		{"with one from the client CA", f.Client(f.ClientCert(t, "prometheus")), http.StatusOK},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+addr+"/metrics", nil)
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("/metrics %s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
}
