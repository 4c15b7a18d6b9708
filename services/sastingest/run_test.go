package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

func TestRunServesAPIHealthAndMetrics(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("t0ken acme/*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan net.Addr, 1)
	bound = func(a net.Addr) { addrc <- a }
	t.Cleanup(func() { bound = nil })
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		errc <- cli(ctx, []string{"--http-addr=127.0.0.1:0", "--nats-url=" + srv.ClientURL(), "--tokens-file=" + tokens, "--spool-dir=" + dir},
			func(string) string { return "" }, io.Discard)
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-errc:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d", code)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d %s", code, body)
	}
	log, err := os.ReadFile("testdata/gosec-sampleapp.sarif")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/sarif?repository=acme/shop", bytes.NewReader(log))
	req.Header.Set("Authorization", "Bearer t0ken")
	req.Header.Set("Content-Type", "application/sarif+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`stateguard_sastingest_uploads_total{endpoint="sarif",outcome="accepted"} 1`,
		`stateguard_sastingest_results_total{severity="high"} 6`,
		`stateguard_sastingest_results_total{severity="medium"} 6`,
		`stateguard_sastingest_received_bytes_total{endpoint="sarif"}`,
		`stateguard_sastingest_ingest_duration_seconds_count{endpoint="sarif",outcome="accepted"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run after shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
}

// startService runs the service on a real JetStream with a token
// "t0ken" for acme/*, and returns its base URL; it stops with the test.
func startService(t *testing.T, args ...string) string {
	t.Helper()
	return startServiceOn(t, natstest.Run(t), args...)
}

// startServiceOn is startService on the JetStream server srv.
func startServiceOn(t *testing.T, srv *server.Server, args ...string) string {
	t.Helper()
	return startServiceURL(t, srv.ClientURL(), args...)
}

// startServiceURL is startService on the JetStream server(s) at natsURL.
func startServiceURL(t *testing.T, natsURL string, args ...string) string {
	t.Helper()
	return startServiceLog(t, natsURL, io.Discard, args...)
}

// startServiceLog is startServiceURL with the service's log to out.
func startServiceLog(t *testing.T, natsURL string, out io.Writer, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("t0ken acme/*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan net.Addr, 1)
	bound = func(a net.Addr) { addrc <- a }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- cli(ctx, append([]string{"--http-addr=127.0.0.1:0", "--nats-url=" + natsURL, "--tokens-file=" + tokens, "--spool-dir=" + dir}, args...),
			func(string) string { return "" }, out)
	}()
	t.Cleanup(func() {
		cancel()
		<-errc
		bound = nil
	})
	select {
	case a := <-addrc:
		return "http://" + a.String()
	case err := <-errc:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return ""
}

// TestHealthAnswersWhileAHugeUploadParses holds the only upload slot with
// a 16 MiB escape-heavy log still arriving (the shape that took seconds a
// megabyte before issue #18): /healthz and /readyz answer meanwhile, a
// second upload is told 429 at once, and the held upload is accepted once
// its body ends.
func TestHealthAnswersWhileAHugeUploadParses(t *testing.T) {
	base := startService(t, "--max-concurrent-uploads=1")
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(body io.Reader) (*http.Response, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/sarif?repository=acme/shop", body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer t0ken")
		req.Header.Set("Content-Type", "application/sarif+json")
		return http.DefaultClient.Do(req)
	}
	pr, pw := io.Pipe()
	t.Cleanup(func() { _ = pw.Close() })
	held := make(chan int, 1)
	go func() {
		resp, err := post(pr)
		if err != nil {
			held <- 0
			return
		}
		_ = resp.Body.Close()
		held <- resp.StatusCode
	}()
	head := `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},"results":[{"` + strings.Repeat(`\u0041`, (16<<20)/6)
	if _, err := io.WriteString(pw, head); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/healthz", "/readyz", "/healthz"} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("%s while an upload parses: %v", path, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s while an upload parses: %d", path, resp.StatusCode)
		}
	}
	resp, err := post(strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a second upload while the only slot is held: %d (Retry-After %q), want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	select {
	case code := <-held:
		t.Fatalf("the held upload ended (%d) before its body did", code)
	default:
	}
	if _, err := io.WriteString(pw, `":1,"ruleId":"r"}]}]}`); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if code := <-held; code != http.StatusAccepted {
		t.Errorf("the held upload: %d, want 202", code)
	}
}
