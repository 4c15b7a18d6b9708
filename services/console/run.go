package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/console/internal/config"
	"github.com/stateguard/stateguard/services/console/internal/correlator"
	"github.com/stateguard/stateguard/services/console/internal/streams"
	"github.com/stateguard/stateguard/services/console/internal/web"
)

// bound, when set (by tests), learns the HTTP server's address.
var bound func(net.Addr)

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, stdout)
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
	hc, err := correlatorHTTP(cfg.CorrelatorCAFile)
	if err != nil {
		return errors.Join(err, closeClient())
	}
	api := correlator.New(cfg.CorrelatorURL, hc)
	proxy, err := proxyAuth(cfg.AuthProxy)
	if err != nil {
		return errors.Join(err, closeClient())
	}
	srv, err := web.New(web.Options{Correlator: api, Streams: reader, Log: log, Registerer: ops.Registry,
		SessionTTL: cfg.SessionTTL, PageSize: cfg.PageSize, FleetTTL: cfg.FleetTTL, Secure: cfg.HTTPS() || cfg.SecureCookies,
		Proxy: proxy})
	if err != nil {
		return errors.Join(err, closeClient())
	}
	ops.Mux.Handle("/", srv.Handler())
	log.Info("console started", "correlator", cfg.CorrelatorURL, "tls", cfg.HTTPS())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return reader.Run(gctx) })
	pages, metrics := ops.Handlers(cfg.MetricsAddr != "")
	g.Go(func() error { return serve(gctx, log, cfg, pages, srv) })
	if metrics != nil {
		g.Go(func() error {
			return service.ServeTLS(gctx, log.With("server", "metrics"), cfg.MetricsAddr, cfg.TLS, metrics, cfg.ShutdownTimeout, nil)
		})
	}
	err = g.Wait()
	err = errors.Join(err, closeClient())
	log.Info("console stopped")
	return err
}

// serve listens on --http-addr (HTTPS with --tls-cert-file, through the
// services' runtime) until ctx ends; then the live feeds end first, so the
// server's graceful shutdown does not wait on their open streams.
func serve(ctx context.Context, log *slog.Logger, cfg config.Config, h http.Handler, srv *web.Server) error {
	stop := context.AfterFunc(ctx, srv.Shutdown)
	defer stop()
	return service.ServeTLS(ctx, log, cfg.HTTPAddr, cfg.TLS, h, cfg.ShutdownTimeout, bound)
}

// proxyAuth is the trust in an authenticating proxy, nil when off: the
// delegate token is the first line of its file that is not blank or a
// comment.
func proxyAuth(c config.AuthProxy) (*web.ProxyAuth, error) {
	if len(c.Addresses) == 0 {
		return nil, nil
	}
	trusted, err := c.Prefixes()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("--auth-proxy-token-file: %w", err)
	}
	var token string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			token = strings.Fields(line)[0]
			break
		}
	}
	if token == "" {
		return nil, fmt.Errorf("--auth-proxy-token-file %s: no token in it", c.TokenFile)
	}
	ops := map[string]bool{}
	for _, o := range c.Operators {
		ops[strings.TrimSpace(o)] = true
	}
	return &web.ProxyAuth{Trusted: trusted, UserHeader: c.UserHeader, GroupsHeader: c.GroupsHeader, Token: token, Operators: ops}, nil
}

// correlatorHTTP is the client of the correlator's API: with caFile it
// trusts that CA (TLS 1.2 or newer) instead of the system's roots.
func correlatorHTTP(caFile string) (*http.Client, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--correlator-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--correlator-ca-file %s: no PEM certificate in it", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
}
