package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stateguard/stateguard/pkg/events/service"
	"github.com/stateguard/stateguard/services/sastingest/internal/api"
	"github.com/stateguard/stateguard/services/sastingest/internal/auth"
	"github.com/stateguard/stateguard/services/sastingest/internal/config"
	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

const name = "sastingest"

// bound, when set (by tests), receives the HTTP server's address.
var bound func(net.Addr)

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "bootstrap" {
		return bootstrap(ctx, args[1:], getenv, stdout)
	}
	cfg, err := config.Parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := service.NewLogger(stdout, cfg.LogLevel, name)
	if err != nil {
		return err
	}
	shutdownOTel, err := service.SetupOTel(ctx, name, getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownOTel(sctx)
	}()

	var tokens *auth.Tokens
	if cfg.TokensFile != "" {
		if tokens, err = auth.LoadTokens(cfg.TokensFile); err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
	}
	var secrets *auth.Secrets
	if cfg.WebhookSecretsFile != "" {
		if secrets, err = auth.LoadSecrets(cfg.WebhookSecretsFile); err != nil {
			return fmt.Errorf("webhook secrets: %w", err)
		}
	}

	ops := service.NewOps()
	client, err := cfg.Connect(ctx, name, log, ops.Registry)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := client.Close(cctx); err != nil {
			log.Warn("nats close", "error", err)
		}
	}()
	service.Watch(ops, client)

	pipeline, err := ingest.New(ctx, client, ingest.Options{
		MaxUncompressed: cfg.MaxUncompressed,
		SpoolDir:        cfg.SpoolDir,
		StoreTimeout:    cfg.StoreTimeout,
		Log:             log,
		Replicas:        cfg.Streams.Replicas,
	})
	if err != nil {
		return err
	}
	var replay *auth.Replay
	if secrets != nil {
		if replay, err = auth.NewReplay(ctx, client.JetStream(), cfg.ReplayTTL, cfg.Streams.Replicas); err != nil {
			return err
		}
	}
	srv := api.New(api.Options{
		Pipeline:        pipeline,
		Tokens:          tokens,
		Secrets:         secrets,
		Replay:          replay,
		MaxBody:         cfg.MaxBodyBytes,
		MaxWebhookBody:  cfg.MaxWebhookBody,
		MaxGitHubBody:   cfg.MaxGitHubBody,
		MaxConcurrent:   cfg.MaxConcurrent,
		BodyReadTimeout: cfg.BodyReadTimeout,
		SpoolDir:        cfg.SpoolDir,
		PublicURL:       cfg.PublicURL,
		Log:             log,
		Metrics:         api.NewMetrics(ops.Registry),
	})
	srv.Register(ops.Mux)
	if err := srv.Resume(ctx); err != nil {
		log.Warn("resuming pending github uploads", "error", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return service.ServeTLS(gctx, log, cfg.HTTPAddr, cfg.TLS, ops.Mux, cfg.ShutdownTimeout, bound)
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		return srv.Close(sctx)
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("sastingest stopped")
	return err
}
