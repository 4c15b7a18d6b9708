package service

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// Ops is a service's HTTP surface: /healthz, /readyz and /metrics, plus the
// routes the service adds to Mux.
type Ops struct {
	Registry *prometheus.Registry
	Mux      *http.ServeMux

	metrics http.Handler
	mu      sync.Mutex
	checks  []readiness
	live    []readiness
}

type readiness struct {
	name string
	fn   func(context.Context) error
}

// NewOps returns an Ops with Go and process collectors registered.
func NewOps() *Ops {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o := &Ops{Registry: reg, Mux: http.NewServeMux(), metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})}
	o.Mux.HandleFunc("GET /healthz", o.healthz)
	o.Mux.HandleFunc("GET /readyz", o.ready)
	o.Mux.Handle("GET /metrics", o.metrics)
	return o
}

// AddReadiness adds a check that must pass for /readyz to answer 200.
func (o *Ops) AddReadiness(name string, fn func(context.Context) error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checks = append(o.checks, readiness{name, fn})
}

// AddLiveness adds a check that must pass for /healthz to answer 200; a
// failing one makes the kubelet restart the container, so add only checks
// that a restart can cure (such as a NATS connection down past its grace,
// events.Client.Live).
func (o *Ops) AddLiveness(name string, fn func(context.Context) error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.live = append(o.live, readiness{name, fn})
}

// healthz answers "ok" while every liveness check passes, and 503 with the
// failing checks otherwise.
func (o *Ops) healthz(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	checks := append([]readiness(nil), o.live...)
	o.mu.Unlock()
	var failed []string
	for _, c := range checks {
		if err := c.fn(r.Context()); err != nil {
			failed = append(failed, c.name+": "+err.Error())
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(strings.Join(failed, "\n") + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

func (o *Ops) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	o.mu.Lock()
	checks := append([]readiness(nil), o.checks...)
	o.mu.Unlock()
	status := map[string]string{}
	code := http.StatusOK
	for _, c := range checks {
		if err := c.fn(ctx); err != nil {
			status[c.name] = err.Error()
			code = http.StatusServiceUnavailable
		} else {
			status[c.name] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(status)
}

// Traced wraps h so that every API request gets an OpenTelemetry server
// span (continuing a traceparent the caller sent); the health and metrics
// endpoints are left out.
func Traced(h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, "http",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}),
	)
}

// Serve listens on addr and serves h in plain HTTP until ctx ends, then
// shuts down within timeout; see ServeTLS.
func Serve(ctx context.Context, log *slog.Logger, addr string, h http.Handler, timeout time.Duration, bound func(net.Addr)) error {
	return ServeTLS(ctx, log, addr, TLSFiles{}, h, timeout, bound)
}

// ServeTLS listens on addr and serves h until ctx ends, then shuts down
// within timeout: in HTTPS when files are enabled (TLS 1.2 or newer, the
// files re-read when they change, /metrics behind a client certificate when
// a client CA is given), in plain HTTP otherwise. It reports the bound
// address through bound (may be nil), which lets tests listen on :0.
func ServeTLS(ctx context.Context, log *slog.Logger, addr string, files TLSFiles, h http.Handler, timeout time.Duration, bound func(net.Addr)) error {
	var tlsConfig *tls.Config
	if files != (TLSFiles{}) {
		r, err := newReloader(files, log)
		if err != nil {
			return err
		}
		tlsConfig = r.Config()
		if files.ClientCAFile != "" {
			h = MetricsNeedClientCert(h)
		}
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	if bound != nil {
		bound(ln.Addr())
	}
	srv := &http.Server{
		Handler:           Traced(h),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		TLSConfig:         tlsConfig,
		// A failed TLS handshake (a plain-HTTP client, an unknown CA) is the
		// caller's problem: logged at debug level, not by the standard logger.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("http server listening", "addr", ln.Addr().String(), "tls", tlsConfig != nil, "client_ca", files.ClientCAFile != "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("http server stopped")
	return nil
}
