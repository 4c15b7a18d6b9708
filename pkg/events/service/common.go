package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/envflag"
)

// Common are the settings every service has.
type Common struct {
	HTTPAddr        string
	LogLevel        string
	NATS            events.ConnConfig
	Streams         events.StreamOptions
	ShutdownTimeout time.Duration
	// NATSDownGrace is how long the NATS connection may be down before
	// /healthz fails (see Watch).
	NATSDownGrace time.Duration
}

// Register defines the common flags; defaultHTTP is the service's default
// --http-addr.
func (c *Common) Register(s *envflag.Set, defaultHTTP string) {
	s.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", defaultHTTP, "address of the HTTP server (API, /healthz, /readyz, /metrics)")
	s.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 20*time.Second, "bound on graceful shutdown")
	s.Int(&c.Streams.Replicas, "stream-replicas", "STREAM_REPLICAS", 1, "replicas of each JetStream stream (3 in a cluster)")
	s.Duration(&c.Streams.Duplicates, "stream-duplicate-window", "STREAM_DUPLICATE_WINDOW", 2*time.Minute, "JetStream de-duplication window")
	s.Duration(&c.NATSDownGrace, "nats-down-grace", "NATS_DOWN_GRACE", 60*time.Second, "how long the NATS connection may be down before /healthz fails and the pod is restarted")
	c.NATS.RegisterFlags(s)
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
func (c *Common) Connect(ctx context.Context, name string, log *slog.Logger, reg prometheus.Registerer) (*events.Client, error) {
	cfg := c.NATS
	cfg.Name = "stateguard-" + name
	client, err := events.Connect(ctx, cfg,
		events.WithSource("/stateguard/"+name),
		events.WithLogger(log),
		events.WithRegisterer(reg),
		events.WithDownGrace(c.NATSDownGrace),
	)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = client.EnsureStreams(sctx, c.Streams)
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
