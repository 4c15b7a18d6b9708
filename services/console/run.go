package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/service"
	"github.com/stateguard/stateguard/services/console/internal/config"
	"github.com/stateguard/stateguard/services/console/internal/correlator"
	"github.com/stateguard/stateguard/services/console/internal/streams"
	"github.com/stateguard/stateguard/services/console/internal/web"
)

// bound, when set (by tests), learns the HTTP server's address.
var bound func(net.Addr)

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		return err
	}
	log, err := service.NewLogger(stdout, cfg.LogLevel, "console")
	if err != nil {
		return err
	}
	ops := service.NewOps()
	nc := cfg.NATS
	nc.Name = "stateguard-console"
	// Bind: the console's NATS user may not create or change anything.
	client, err := events.Connect(ctx, nc, events.WithBind(), events.WithSource("/stateguard/console"),
		events.WithLogger(log), events.WithRegisterer(ops.Registry), events.WithDownGrace(cfg.NATSDownGrace))
	if err != nil {
		return err
	}
	service.Watch(ops, client)
	closeClient := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		return client.Close(sctx)
	}
	reader := streams.New(client, cfg.Consumers, log)
	api := correlator.New(cfg.CorrelatorURL, nil)
	srv, err := web.New(web.Options{Correlator: api, Streams: reader, Log: log, Registerer: ops.Registry,
		SessionTTL: cfg.SessionTTL, PageSize: cfg.PageSize, FleetTTL: cfg.FleetTTL, Secure: cfg.TLS() || cfg.SecureCookies})
	if err != nil {
		return errors.Join(err, closeClient())
	}
	ops.Mux.Handle("/", srv.Handler())
	log.Info("console started", "correlator", cfg.CorrelatorURL, "tls", cfg.TLS())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return reader.Run(gctx) })
	g.Go(func() error { return serve(gctx, log, cfg, ops.Mux, srv) })
	err = g.Wait()
	err = errors.Join(err, closeClient())
	log.Info("console stopped")
	return err
}

// serve listens on --http-addr (HTTPS with --tls-cert) until ctx ends, then
// ends the live feeds and shuts down within --shutdown-timeout.
func serve(ctx context.Context, log *slog.Logger, cfg config.Config, h http.Handler, srv *web.Server) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	if bound != nil {
		bound(ln.Addr())
	}
	hs := &http.Server{
		Handler:           service.Traced(h),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	log.Info("http server listening", "addr", ln.Addr().String(), "tls", cfg.TLS())
	errc := make(chan error, 1)
	go func() {
		if cfg.TLS() {
			errc <- hs.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	srv.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("http server stopped")
	return nil
}
