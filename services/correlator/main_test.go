package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/api"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

func TestRunServesTheAPIAndShutsDown(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	bound = func(a net.Addr) { addrc <- a.String() }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{
			"--nats-url", srv.ClientURL(), "--http-addr", "127.0.0.1:0", "--api-tokens-file", tokens,
			"--config", "config.example.yaml", "--log-level", "warn",
		}, func(string) string { return "" }, io.Discard)
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	}
	if err := c.Publish(t.Context(), scenariotest.CaseStudy()[:9]...); err != nil {
		t.Fatal(err)
	}
	var posture api.Posture
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code := getJSON(t, base+"/v1/apps/shop/db", "t0ken", &posture); code == http.StatusOK && len(posture.Incidents) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no incident in the posture after 30s: %+v", posture)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := getJSON(t, base+"/readyz", "", nil); code != http.StatusOK {
		t.Errorf("/readyz: %d", code)
	}
	if code := getJSON(t, base+"/v1/incidents", "wrong", nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func getJSON(t *testing.T, url, token string, into any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}
