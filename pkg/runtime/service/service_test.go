package service_test

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/service"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOpsEndpointsFollowJetStream runs the operations server of a service
// that connected through Common: /readyz is 200 while JetStream and the
// streams are there and 503 once the server is gone; /healthz stays 200.
func TestOpsEndpointsFollowJetStream(t *testing.T) {
	srv := natstest.Run(t)
	var common service.Common
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	set := envflag.New(fs, func(k string) string {
		if k == "NATS_URL" {
			return srv.ClientURL()
		}
		return ""
	})
	common.Register(set, "127.0.0.1:0")
	if err := set.Parse([]string{"--nats-reconnect-wait", "50ms"}); err != nil {
		t.Fatal(err)
	}
	log, err := service.NewLogger(io.Discard, common.LogLevel, "test")
	if err != nil {
		t.Fatal(err)
	}
	ops := service.NewOps()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	client, err := common.Connect(ctx, "test", log, ops.Registry)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	ops.AddReadiness("jetstream", client.Ready)

	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- service.Serve(ctx, log, common.HTTPAddr, ops.Mux, 5*time.Second, func(a net.Addr) { addrc <- a })
	}()
	base := "http://" + (<-addrc).String()

	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s, want 200", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || len(body) == 0 {
		t.Errorf("/metrics = %d", code)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, base+"/readyz")
		if code == http.StatusServiceUnavailable {
			var status map[string]string
			if err := json.Unmarshal([]byte(body), &status); err != nil || status["jetstream"] == "" || status["jetstream"] == "ok" {
				t.Errorf("/readyz body %q does not name the failing check", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after NATS stopped", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while NATS is down, want 200 (liveness must not follow a dependency)", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestNewLoggerRejectsUnknownLevels(t *testing.T) {
	if _, err := service.NewLogger(io.Discard, "loud", "x"); err == nil {
		t.Error("level loud accepted")
	}
}

// TestHealthzFailsOnceNATSIsDownPastTheGrace serves the endpoints Watch
// wires: with NATS gone /readyz fails at once while /healthz stays 200
// within --nats-down-grace, and fails (naming the check) past it, so the
// kubelet restarts the pod; with NATS back both answer 200 again.
func TestHealthzFailsOnceNATSIsDownPastTheGrace(t *testing.T) {
	port, err := natstest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv := natstest.Run(t, natstest.WithStoreDir(dir), natstest.WithPort(port))
	var common service.Common
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	common.Register(envflag.New(fs, func(string) string { return "" }), "127.0.0.1:0")
	if err := fs.Parse([]string{"--nats-down-grace", "90s"}); err != nil {
		t.Fatal(err)
	}
	if common.NATSDownGrace != 90*time.Second {
		t.Fatalf("--nats-down-grace 90s gave %s", common.NATSDownGrace)
	}
	var now atomic.Int64
	now.Store(time.Unix(1_000_000, 0).UnixNano())
	client := natstest.Client(t, srv, events.WithDownGrace(common.NATSDownGrace),
		events.WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
	ops := service.NewOps()
	service.Watch(ops, client)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- service.Serve(ctx, slog.New(slog.DiscardHandler), "127.0.0.1:0", ops.Mux, 5*time.Second, func(a net.Addr) { addrc <- a })
	}()
	base := "http://" + (<-addrc).String()
	for _, path := range []string{"/readyz", "/healthz"} {
		if code, body := get(t, base+path); code != http.StatusOK {
			t.Fatalf("%s = %d %s while NATS is up, want 200", path, code, body)
		}
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	waitCode(t, base+"/readyz", http.StatusServiceUnavailable)
	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s right after NATS went down, want 200 within the grace", code, body)
	}
	now.Add(int64(91 * time.Second))
	code, body := get(t, base+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "nats: ") {
		t.Errorf("/healthz = %d %q 91s after NATS went down, want 503 naming the nats check", code, body)
	}

	natstest.Run(t, natstest.WithStoreDir(dir), natstest.WithPort(port))
	waitCode(t, base+"/readyz", http.StatusOK)
	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s after NATS came back, want 200", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// waitCode polls url until it answers code, bounded by a generous deadline.
func waitCode(t *testing.T, url string, code int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := get(t, url)
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %d, want %d", url, got, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
