package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/tlstest"
	"github.com/stateguard/stateguard/pkg/runtime/service"
)

// TestTalksHTTPSWithACAFile: stateguardctl reaches a correlator API served
// over HTTPS by the services' runtime when given the CA with --ca-file, and
// refuses the same server without it (the system roots do not know it).
func TestTalksHTTPSWithACAFile(t *testing.T) {
	f := tlstest.New(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("[]"))
	})
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- service.ServeTLS(ctx, slog.New(slog.DiscardHandler), "127.0.0.1:0",
			service.TLSFiles{CertFile: f.CertFile, KeyFile: f.KeyFile}, mux, 5*time.Second, func(a net.Addr) { addrc <- a })
	}()
	t.Cleanup(func() { cancel(); <-errc })
	var server string
	select {
	case a := <-addrc:
		server = "https://" + a.String()
	case err := <-errc:
		t.Fatal(err)
	}
	env := map[string]string{"STATEGUARD_SERVER": server, "STATEGUARD_TOKEN": "tok"}
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	if err := execute(t.Context(), []string{"--ca-file", f.CAFile, "-o", "json", "status"}, getenv, &out, io.Discard); err != nil {
		t.Fatalf("status over HTTPS with the CA: %v", err)
	}
	if !strings.HasPrefix(strings.TrimSpace(out.String()), "[") && !strings.HasPrefix(strings.TrimSpace(out.String()), "{") {
		t.Errorf("status printed %q, want the API's JSON", out.String())
	}
	err := execute(t.Context(), []string{"status"}, getenv, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without --ca-file: %v, want a certificate verification error", err)
	}
}
