package main

import (
	"context"
	"io"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/service"
	"github.com/stateguard/stateguard/services/sastingest/internal/auth"
	"github.com/stateguard/stateguard/services/sastingest/internal/config"
	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

// bootstrap is `sastingest bootstrap`: as the admin NATS user, it creates
// or updates the streams and sastingest's buckets through the code the
// service runs, then exits; the service runs with --nats-bind.
func bootstrap(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := service.NewLogger(stdout, cfg.LogLevel, name)
	if err != nil {
		return err
	}
	return cfg.Bootstrap(ctx, name, log, func(ctx context.Context, c *events.Client) error {
		if _, err := ingest.New(ctx, c, ingest.Options{SpoolDir: cfg.SpoolDir, Log: log, Replicas: cfg.Streams.Replicas}); err != nil {
			return err
		}
		_, err := auth.NewReplay(ctx, c.JetStream(), cfg.ReplayTTL, cfg.Streams.Replicas)
		return err
	})
}
