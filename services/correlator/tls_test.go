package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/harness/tlstest"
)

// TestServesHTTPS runs the correlator with --tls-cert-file and
// --tls-key-file: the TLS conformance, then stateguardctl's kind of call
// (a bearer token over HTTPS verified against the CA) answered.
func TestServesHTTPS(t *testing.T) {
	srv := natstest.Run(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := tlstest.New(t)
	addrc := make(chan string, 1)
	bound = func(a net.Addr) { addrc <- a.String() }
	t.Cleanup(func() { bound = nil })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{
			"--nats-url", srv.ClientURL(), "--http-addr", "127.0.0.1:0", "--api-tokens-file", tokens,
			"--config", "config.example.yaml", "--log-level", "warn",
		}, f.Args()...), func(string) string { return "" }, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start")
	}
	tlstest.Check(t, f, addr)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+addr+"/v1/incidents", nil)
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/incidents over HTTPS: %d", resp.StatusCode)
	}
}
