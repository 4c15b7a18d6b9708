package service_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/service"
)

// common parses the common flags of a service on NATS srv from args.
func common(t *testing.T, natsURL string, args ...string) service.Common {
	t.Helper()
	var c service.Common
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	c.Register(envflag.New(fs, func(k string) string {
		if k == "NATS_URL" {
			return natsURL
		}
		return ""
	}), "127.0.0.1:0")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c
}

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// running is a service started by service.Run in the background.
type running struct {
	api, metrics string
	stopped      chan struct{}
	stopCalled   chan struct{}
	done         chan error
	cancel       context.CancelFunc
}

// start runs a service whose Setup adds the route /v1/thing, a task that
// waits for the end, and an OnStop function.
func start(t *testing.T, c service.Common, out *lockedBuffer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{stopped: make(chan struct{}), stopCalled: make(chan struct{}), done: make(chan error, 1), cancel: cancel}
	apic, metricsc := make(chan net.Addr, 1), make(chan net.Addr, 1)
	go func() {
		r.done <- service.Run(ctx, "svc", c, out, func(string) string { return "" }, func(ctx context.Context, p *service.Process) error {
			p.HTTPBound = func(a net.Addr) { apic <- a }
			p.MetricsBound = func(a net.Addr) { metricsc <- a }
			p.Ops.Mux.HandleFunc("GET /v1/thing", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("thing")) })
			p.Go(func(ctx context.Context) error { <-ctx.Done(); close(r.stopped); return nil })
			p.OnStop(func(context.Context) error { close(r.stopCalled); return nil })
			return nil
		})
	}()
	select {
	case a := <-apic:
		r.api = "http://" + a.String()
	case err := <-r.done:
		t.Fatalf("run: %v", err)
	}
	if c.MetricsAddr != "" {
		r.metrics = "http://" + (<-metricsc).String()
	}
	return r
}

// stop cancels the service and checks it stopped in order and cleanly.
func (r *running) stop(t *testing.T, out *lockedBuffer) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("run after cancel: %v, want nil", err)
	}
	<-r.stopped
	<-r.stopCalled
	if !strings.Contains(out.String(), `"svc stopped"`) {
		t.Errorf("no \"svc stopped\" line in the log:\n%s", out.String())
	}
}

// TestRunServesMetricsOnItsOwnPort: with --metrics-addr, /metrics is on
// the metrics server and 404 on the API server (so a NetworkPolicy on the
// metrics port fences it); /healthz and /readyz answer on both; the API's
// routes only on the API server.
func TestRunServesMetricsOnItsOwnPort(t *testing.T) {
	srv := natstest.Run(t)
	c := common(t, srv.ClientURL(), "--metrics-addr", "127.0.0.1:0")
	var out lockedBuffer
	r := start(t, c, &out)
	for _, tc := range []struct {
		url  string
		want int
	}{
		{r.api + "/v1/thing", http.StatusOK},
		{r.api + "/metrics", http.StatusNotFound},
		{r.api + "/healthz", http.StatusOK},
		{r.api + "/readyz", http.StatusOK},
		{r.metrics + "/metrics", http.StatusOK},
		{r.metrics + "/healthz", http.StatusOK},
		{r.metrics + "/readyz", http.StatusOK},
		{r.metrics + "/v1/thing", http.StatusNotFound},
	} {
		if code, body := get(t, tc.url); code != tc.want {
			t.Errorf("GET %s = %d %q, want %d", tc.url, code, body, tc.want)
		}
	}
	if _, body := get(t, r.metrics+"/metrics"); !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics on the metrics port has no go_goroutines:\n%.300s", body)
	}
	r.stop(t, &out)
}

// TestRunServesMetricsOnTheAPIPortWithoutMetricsAddr: without
// --metrics-addr everything stays on --http-addr, as before.
func TestRunServesMetricsOnTheAPIPortWithoutMetricsAddr(t *testing.T) {
	srv := natstest.Run(t)
	var out lockedBuffer
	r := start(t, common(t, srv.ClientURL()), &out)
	for _, path := range []string{"/v1/thing", "/metrics", "/healthz", "/readyz"} {
		if code, body := get(t, r.api+path); code != http.StatusOK {
			t.Errorf("GET %s = %d %q, want 200", path, code, body)
		}
	}
	r.stop(t, &out)
}

// TestRunStopsWhenSetupFails: a Setup error is returned, the work it
// started ends, and no server is left listening.
func TestRunStopsWhenSetupFails(t *testing.T) {
	srv := natstest.Run(t)
	boom := errors.New("boom")
	ended := make(chan struct{})
	var out lockedBuffer
	err := service.Run(t.Context(), "svc", common(t, srv.ClientURL()), &out, func(string) string { return "" }, func(_ context.Context, p *service.Process) error {
		p.Go(func(ctx context.Context) error { <-ctx.Done(); close(ended); return nil })
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("run = %v, want boom", err)
	}
	<-ended
	if strings.Contains(out.String(), "http server listening") {
		t.Errorf("a server started although setup failed:\n%s", out.String())
	}
}
