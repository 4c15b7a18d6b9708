package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/natsflag"
)

// Common are the settings every service has.
type Common struct {
	HTTPAddr string
	// MetricsAddr, when set, serves /metrics (with /healthz and /readyz)
	// on a server of its own, and no longer on HTTPAddr (see Run).
	MetricsAddr string
	// TLS makes the HTTP server speak HTTPS (--tls-cert-file and friends).
	TLS             TLSFiles
	LogLevel        string
	NATS            events.ConnConfig
	Streams         events.StreamOptions
	ShutdownTimeout time.Duration
	// Bind makes the service bind to the streams, consumers and buckets
	// the bootstrap created instead of creating or updating them.
	Bind bool
	// NATSDownGrace is how long the NATS connection may be down before
	// /healthz fails (see Watch).
	NATSDownGrace time.Duration
}

// Register defines the common flags; defaultHTTP is the service's default
// --http-addr.
func (c *Common) Register(s *envflag.Set, defaultHTTP string) {
	s.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", defaultHTTP, "address of the HTTP server (API, /healthz, /readyz, /metrics)")
	s.String(&c.MetricsAddr, "metrics-addr", "METRICS_ADDR", "", "address of a separate server for /metrics, /healthz and /readyz (then /metrics leaves --http-addr, so a NetworkPolicy can fence it); empty: all on --http-addr")
	s.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 20*time.Second, "bound on graceful shutdown")
	s.Int(&c.Streams.Replicas, "stream-replicas", "STREAM_REPLICAS", 1, "replicas of each JetStream stream (3 in a cluster)")
	s.Duration(&c.Streams.Duplicates, "stream-duplicate-window", "STREAM_DUPLICATE_WINDOW", 2*time.Minute, "JetStream de-duplication window")
	s.Bool(&c.Bind, "nats-bind", "NATS_BIND", false, "bind to the JetStream streams, consumers and buckets the bootstrap subcommand created (as a NATS user that may not create them) instead of creating or updating them")
	s.Duration(&c.NATSDownGrace, "nats-down-grace", "NATS_DOWN_GRACE", 60*time.Second, "how long the NATS connection may be down before /healthz fails and the pod is restarted")
	c.TLS.Register(s)
	natsflag.Register(s, &c.NATS)
}

// Watch makes ops follow client's connection: /readyz fails while it is
// down (or a stream is missing), /healthz once it has been down longer than
// --nats-down-grace.
func Watch(ops *Ops, client *events.Client) {
	ops.AddReadiness("jetstream", client.Ready)
	ops.AddLiveness("nats", client.Live)
}

// Connect dials NATS, makes sure the streams exist, and returns a client
// whose events carry the source /stateguard/<name>. It waits for NATS up to
// ctx's deadline, logging progress, so services can start before NATS does.
//
// With Bind (--nats-bind) the client binds instead of creating, and waits
// for the streams the service uses (events.StreamsOf) to exist.
func (c *Common) Connect(ctx context.Context, name string, log *slog.Logger, reg prometheus.Registerer) (*events.Client, error) {
	cfg := c.NATS
	cfg.Name = "stateguard-" + name
	opts := []events.Option{
		events.WithSource("/stateguard/" + name),
		events.WithLogger(log),
		events.WithRegisterer(reg),
		events.WithDownGrace(c.NATSDownGrace),
	}
	streams := c.Streams
	if c.Bind {
		opts = append(opts, events.WithBind())
		streams.Names = events.StreamsOf(name)
	}
	client, err := events.Connect(ctx, cfg, opts...)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = client.EnsureStreams(sctx, streams)
		cancel()
		if err == nil {
			return client, nil
		}
		log.Warn("streams not ready yet", "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			_ = client.Close(context.Background())
			return nil, fmt.Errorf("ensure streams: %w", err)
		case <-time.After(min(time.Duration(attempt)*time.Second, 10*time.Second)):
		}
	}
}

// Bootstrap is a service's `bootstrap` subcommand: it connects as a NATS
// user allowed to manage JetStream (the admin), creates or updates every
// stream, then runs create, which creates the service's consumers and
// buckets through the same code the service runs (so their configuration
// cannot drift), and disconnects. The service then runs with --nats-bind
// as its own, restricted user. Safe to run again at every upgrade.
// Its log goes to stdout at --log-level, like Run's.
func (c *Common) Bootstrap(ctx context.Context, name string, stdout io.Writer, create func(context.Context, *events.Client) error) error {
	log, err := NewLogger(stdout, c.LogLevel, name)
	if err != nil {
		return err
	}
	bc := *c
	bc.Bind = false
	client, err := bc.Connect(ctx, name+"-bootstrap", log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	err = create(ctx, client)
	cctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if cerr := client.Close(cctx); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("bootstrap %s: %w", name, err)
	}
	log.Info("bootstrap done: streams, consumers and buckets created or updated", "service", name)
	return nil
}
