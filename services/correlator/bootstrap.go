package main

import (
	"context"
	"io"
	"os"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/service"
	"github.com/stateguard/stateguard/services/correlator/internal/audit"
	"github.com/stateguard/stateguard/services/correlator/internal/config"
	"github.com/stateguard/stateguard/services/correlator/internal/engine"
)

// bootstrap is `correlator bootstrap`: as the admin NATS user, it creates
// or updates the streams, the state bucket, the audit bucket and the
// engine's durable consumers, then exits; the service runs with --nats-bind.
func bootstrap(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, os.ReadFile)
	if err != nil {
		return err
	}
	log, err := service.NewLogger(stdout, cfg.LogLevel, "correlator")
	if err != nil {
		return err
	}
	return cfg.Bootstrap(ctx, "correlator", log, func(ctx context.Context, c *events.Client) error {
		if _, err := engine.New(ctx, engine.Options{Client: c, Rules: cfg.Rules, Bucket: cfg.Bucket, Replicas: cfg.KVReplicas, Log: log}); err != nil {
			return err
		}
		// The audit bucket: rules files by version, reports.
		if _, err := audit.OpenObjects(ctx, c.JetStream(), cfg.KVReplicas); err != nil {
			return err
		}
		for _, cc := range engine.ConsumerConfigs(cfg.Consumer, cfg.Workers) {
			if err := c.EnsureConsumer(ctx, cc); err != nil {
				return err
			}
		}
		return nil
	})
}
