package app

import (
	"context"
	"io"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/service"
	"github.com/stateguard/stateguard/services/certwatcher/internal/config"
	"github.com/stateguard/stateguard/services/certwatcher/internal/marks"
	"github.com/stateguard/stateguard/services/certwatcher/internal/rotation"
)

// bootstrap is `certwatcher bootstrap`: as the admin NATS user, it creates
// or updates the streams, the marks bucket and (with rotation on) the
// durable consumer of rotation requests, then exits; the service runs with
// --nats-bind.
func bootstrap(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := service.NewLogger(stdout, cfg.LogLevel, Name)
	if err != nil {
		return err
	}
	return cfg.Bootstrap(ctx, Name, log, func(ctx context.Context, c *events.Client) error {
		if _, err := marks.Open(ctx, c.JetStream(), cfg.KVBucket, cfg.Streams.Replicas, cfg.MarkTTL); err != nil {
			return err
		}
		if !cfg.UseCluster() || !cfg.Rotation {
			return nil
		}
		return c.EnsureConsumer(ctx, rotation.ConsumerConfig(cfg.ConsumerName, cfg.ConsumerAckWait))
	})
}
