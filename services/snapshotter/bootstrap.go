package main

import (
	"context"
	"io"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/service"
	"github.com/stateguard/stateguard/services/snapshotter/internal/config"
	"github.com/stateguard/stateguard/services/snapshotter/internal/observer"
	"github.com/stateguard/stateguard/services/snapshotter/internal/pins"
	"github.com/stateguard/stateguard/services/snapshotter/internal/restore"
)

// bootstrap is `snapshotter bootstrap`: as the admin NATS user, it creates
// or updates the streams, the observations and recommendations buckets and
// the durable consumers of pin and restore requests and of restore
// recommendations, then exits; the service runs with
// --nats-bind.
func bootstrap(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := service.NewLogger(stdout, cfg.LogLevel, name)
	if err != nil {
		return err
	}
	return cfg.Bootstrap(ctx, name, log, func(ctx context.Context, c *events.Client) error {
		if cfg.Observe {
			if _, err := observer.OpenStore(ctx, c.JetStream(), cfg.ObserveBucket, cfg.Streams.Replicas); err != nil {
				return err
			}
		}
		if _, err := restore.OpenRecommendationStore(ctx, c.JetStream(), cfg.RecommendationsBucket, cfg.Streams.Replicas); err != nil {
			return err
		}
		if err := c.EnsureConsumer(ctx, pins.Consumer()); err != nil {
			return err
		}
		if err := c.EnsureConsumer(ctx, restore.RecommendationsConsumer()); err != nil {
			return err
		}
		return c.EnsureConsumer(ctx, restore.Consumer())
	})
}
