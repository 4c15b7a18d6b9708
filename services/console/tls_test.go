package main

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/harness/tlstest"
)

// TestServesHTTPS: with the services' --tls-cert-file/--tls-key-file the
// console speaks only HTTPS (TLS 1.2+), and a rotated certificate is served
// at the next connection without a restart.
func TestServesHTTPS(t *testing.T) {
	srv := natstest.Run(t)
	admin, err := events.Connect(t.Context(), events.ConnConfig{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	// The console binds to streams the bootstrap created.
	if err := admin.EnsureStreams(t.Context(), events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	f := tlstest.New(t)
	addrc := make(chan string, 1)
	bound = func(a net.Addr) { addrc <- a.String() }
	t.Cleanup(func() { bound = nil })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--http-addr", "127.0.0.1:0", "--nats-url", srv.ClientURL(),
			"--correlator-url", "http://127.0.0.1:1", "--log-level", "warn"}, f.Args()...), func(string) string { return "" }, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case addr := <-addrc:
		tlstest.Check(t, f, addr)
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the console did not start")
	}
}
