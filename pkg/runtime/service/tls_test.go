package service_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/logtest"
	"github.com/stateguard/stateguard/pkg/harness/tlstest"
	"github.com/stateguard/stateguard/pkg/runtime/service"
)

// serveTLS runs ServeTLS with files on a loopback port until the test ends
// and returns its address.
func serveTLS(t *testing.T, files service.TLSFiles, log *slog.Logger) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- service.ServeTLS(ctx, log, "127.0.0.1:0", files, service.NewOps().Mux, 5*time.Second, func(a net.Addr) { addrc <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a := <-addrc:
		return a.String()
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	}
	return ""
}

// TestServeTLS: the handshake verifies against the CA, TLS 1.1 and plain
// HTTP are refused, and a certificate rotated on disk is served to the next
// connection.
func TestServeTLS(t *testing.T) {
	f := tlstest.New(t)
	addr := serveTLS(t, service.TLSFiles{CertFile: f.CertFile, KeyFile: f.KeyFile}, slog.New(slog.DiscardHandler))
	tlstest.Check(t, f, addr)
}

// TestServeTLSKeepsTheLastGoodPair: a certificate file that no longer
// matches its key (half of a rotation written) leaves the previous pair in
// service, and the failure is logged once.
func TestServeTLSKeepsTheLastGoodPair(t *testing.T) {
	f := tlstest.New(t)
	// A directory of its own whose tls.crt the test rewrites in place.
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for src, dst := range map[string]string{f.CertFile: certFile, f.KeyFile: keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logs := &logtest.Buffer{}
	addr := serveTLS(t, service.TLSFiles{CertFile: certFile, KeyFile: keyFile}, slog.New(slog.NewJSONHandler(logs, nil)))
	want := f.Serial
	f.Rotate(t) // a new certificate whose key the server never sees
	b, err := os.ReadFile(f.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(certFile+".new", certFile); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := f.ServedSerial(t.Context(), addr)
		if err != nil {
			t.Fatalf("handshake with a mismatched pair on disk: %v", err)
		}
		if got.Cmp(want) != 0 {
			t.Fatalf("served %x, want the last good %x", got, want)
		}
	}
	if n := strings.Count(logs.String(), "keeping the previous certificate"); n != 1 {
		t.Errorf("logged the failed reload %d times, want once:\n%s", n, logs.String())
	}
}

// TestServeTLSClientCA: with a client CA, /metrics needs a client
// certificate from it; the probes do not.
func TestServeTLSClientCA(t *testing.T) {
	f := tlstest.New(t)
	addr := serveTLS(t, service.TLSFiles{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: f.CAFile}, slog.New(slog.DiscardHandler))
	other := tlstest.New(t) // a CA the server does not trust
	for _, c := range []struct {
		name   string
		client *http.Client
		path   string
		want   int
	}{
		{"probe without a certificate", f.Client(), "/healthz", http.StatusOK},
		{"readiness without a certificate", f.Client(), "/readyz", http.StatusOK},
		{"metrics without a certificate", f.Client(), "/metrics", http.StatusForbidden},
		{"metrics with a certificate from the client CA", f.Client(f.ClientCert(t, "prometheus")), "/metrics", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+addr+c.path, nil)
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.want {
				t.Errorf("GET %s: %d %s, want %d", c.path, resp.StatusCode, b, c.want)
			}
		})
	}
	t.Run("a certificate from another CA fails the handshake", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+addr+"/healthz", nil)
		resp, err := f.Client(other.ClientCert(t, "intruder")).Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("served %d to a client certificate from an unknown CA", resp.StatusCode)
		}
	})
}

func TestTLSFilesValidate(t *testing.T) {
	for name, c := range map[string]struct {
		files service.TLSFiles
		ok    bool
	}{
		"none: plain HTTP":          {service.TLSFiles{}, true},
		"certificate and key":       {service.TLSFiles{CertFile: "c", KeyFile: "k"}, true},
		"with a client CA":          {service.TLSFiles{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}, true},
		"a certificate without key": {service.TLSFiles{CertFile: "c"}, false},
		"a key without certificate": {service.TLSFiles{KeyFile: "k"}, false},
		"a client CA alone":         {service.TLSFiles{ClientCAFile: "ca"}, false},
	} {
		if err := c.files.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
}

// TestServeTLSMissingFilesStopsAtStart: a wrong path is an error at start,
// not a server that fails every handshake.
func TestServeTLSMissingFilesStopsAtStart(t *testing.T) {
	dir := t.TempDir()
	err := service.ServeTLS(t.Context(), slog.New(slog.DiscardHandler), "127.0.0.1:0",
		service.TLSFiles{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: filepath.Join(dir, "nope.key")},
		http.NewServeMux(), time.Second, nil)
	if err == nil || !strings.Contains(err.Error(), "nope.crt") {
		t.Fatalf("err = %v, want one naming the missing file", err)
	}
}
