package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/sync/errgroup"

	"github.com/stateguard/stateguard/pkg/events"
)

// Process is a running service's shared parts, made by Run in the one
// start-up order every service follows: the logger, tracing, the ops
// surface (/healthz, /readyz, /metrics) and the NATS client that ops
// watches. A service's Setup adds its own parts to it.
type Process struct {
	Name   string
	Log    *slog.Logger
	Ops    *Ops
	Client *events.Client

	// HTTPBound and MetricsBound, when set (by tests, in Setup), learn the
	// addresses the API and the metrics servers listen on.
	HTTPBound, MetricsBound func(net.Addr)

	common Common
	group  *errgroup.Group
	ctx    context.Context
}

// Setup wires a service's parts onto p; ctx ends when the process stops.
// It starts long-running work with p.Go and registers what must stop
// before the NATS connection closes with p.OnStop.
type Setup func(ctx context.Context, p *Process) error

// Run is a service's life, written once: logger (--log-level, JSON on
// stdout), tracing (SetupOTel), the ops surface, the NATS connection
// (Common.Connect, watched by /readyz and /healthz), then setup; then the
// API server on --http-addr and, with --metrics-addr, the metrics server
// there, with setup's work, until ctx ends or one of them fails. Shutdown
// is in reverse: the servers and the OnStop functions (each bounded by
// --shutdown-timeout), then the NATS connection, then tracing.
func Run(ctx context.Context, name string, c Common, stdout io.Writer, getenv func(string) string, setup Setup) (err error) {
	log, err := NewLogger(stdout, c.LogLevel, name)
	if err != nil {
		return err
	}
	stopOTel, err := SetupOTel(ctx, name, getenv)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.bounded(stopOTel)) }()
	p := &Process{Name: name, Log: log, Ops: NewOps(), common: c}
	if p.Client, err = c.Connect(ctx, name, log, p.Ops.Registry); err != nil {
		return err
	}
	defer func() {
		if cerr := c.bounded(p.Client.Close); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close events client: %w", cerr))
		}
		log.Info(name + " stopped")
	}()
	Watch(p.Ops, p.Client)
	return p.serve(ctx, setup)
}

// serve runs setup, then the servers and setup's work in one group.
func (p *Process) serve(ctx context.Context, setup Setup) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.group, p.ctx = errgroup.WithContext(ctx)
	if err := setup(p.ctx, p); err != nil {
		cancel()
		return errors.Join(err, p.wait())
	}
	api, metrics := p.Ops.Handlers(p.common.MetricsAddr != "")
	p.Go(func(ctx context.Context) error {
		return ServeTLS(ctx, p.Log, p.common.HTTPAddr, p.common.TLS, api, p.common.ShutdownTimeout, p.HTTPBound)
	})
	if metrics != nil {
		p.Go(func(ctx context.Context) error {
			return ServeTLS(ctx, p.Log.With("server", "metrics"), p.common.MetricsAddr, p.common.TLS, metrics, p.common.ShutdownTimeout, p.MetricsBound)
		})
	}
	p.Log.Info(p.Name+" started", "http_addr", p.common.HTTPAddr, "metrics_addr", p.common.MetricsAddr)
	return p.wait()
}

// wait waits for the group; a cancelled context is a normal stop.
func (p *Process) wait() error {
	err := p.group.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Go runs fn in the process's group until ctx ends; an error stops the
// whole process.
func (p *Process) Go(fn func(ctx context.Context) error) {
	p.group.Go(func() error { return fn(p.ctx) })
}

// OnStop runs stop once the process is stopping, with a context bounded by
// --shutdown-timeout, before the NATS connection closes (a consumer's Stop,
// a queue's Close).
func (p *Process) OnStop(stop func(context.Context) error) {
	p.Go(func(ctx context.Context) error {
		<-ctx.Done()
		return p.common.bounded(stop)
	})
}

// bounded calls fn with a fresh context bounded by --shutdown-timeout.
func (c *Common) bounded(fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	return fn(ctx)
}

// Handlers returns the handlers of the API server and the metrics server.
// Without a separate metrics server (separate false) the API server serves
// everything, as Mux does, and metrics is nil. With one, the metrics server
// serves /metrics, /healthz and /readyz, and the API server everything but
// /metrics, so a NetworkPolicy on the metrics port fences the metrics.
func (o *Ops) Handlers(separate bool) (api, metrics http.Handler) {
	if !separate {
		return o.Mux, nil
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", o.healthz)
	m.HandleFunc("GET /readyz", o.ready)
	m.Handle("GET /metrics", o.metrics)
	return withoutMetrics(o.Mux), m
}

// withoutMetrics answers 404 for /metrics and passes the rest to h.
func withoutMetrics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
