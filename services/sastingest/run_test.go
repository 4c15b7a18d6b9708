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
		errc <- run(ctx, []string{"--http-addr=127.0.0.1:0", "--nats-url=" + srv.ClientURL(), "--tokens-file=" + tokens, "--spool-dir=" + dir},
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
		`sastingest_uploads_total{endpoint="sarif",outcome="accepted"} 1`,
		`sastingest_results_total{severity="high"} 6`,
		`sastingest_results_total{severity="medium"} 6`,
		`sastingest_received_bytes_total{endpoint="sarif"}`,
		`sastingest_ingest_duration_seconds_count{endpoint="sarif",outcome="accepted"} 1`,
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
