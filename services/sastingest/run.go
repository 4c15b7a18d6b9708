package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/sastingest/internal/api"
	"github.com/stateguard/stateguard/services/sastingest/internal/auth"
	"github.com/stateguard/stateguard/services/sastingest/internal/config"
	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

const name = "sastingest"

// bound, when set (by tests), receives the HTTP server's address.
var bound func(net.Addr)

// cli is sastingest's command line: the service and `bootstrap`.
var cli = service.Commands(name, run, service.BootstrapCommand(bootstrap))

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	tokens, secrets, err := loadAuth(cfg)
	if err != nil {
		return err
	}
	return service.Run(ctx, name, cfg.Common, stdout, getenv, func(ctx context.Context, p *service.Process) error {
		return wire(ctx, p, cfg, tokens, secrets)
	})
}

// bootstrap is `sastingest bootstrap [flags]` (the service's flags).
func bootstrap(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	return cfg.Bootstrap(ctx, name, stdout, func(ctx context.Context, c *events.Client) error {
		return create(ctx, cfg, c)
	})
}

// create is `sastingest bootstrap`'s work: as the admin NATS user, it
// creates or updates sastingest's buckets through the code the service
// runs; the service then runs with --nats-bind.
func create(ctx context.Context, cfg *config.Config, c *events.Client) error {
	if _, err := ingest.New(ctx, c, ingest.Options{SpoolDir: cfg.SpoolDir, Replicas: cfg.Streams.Replicas}); err != nil {
		return err
	}
	_, err := auth.NewReplay(ctx, c.JetStream(), cfg.ReplayTTL, cfg.Streams.Replicas)
	return err
}

// loadAuth reads the upload tokens and the webhook secrets.
func loadAuth(cfg *config.Config) (tokens *auth.Tokens, secrets *auth.Secrets, err error) {
	if cfg.TokensFile != "" {
		if tokens, err = auth.LoadTokens(cfg.TokensFile); err != nil {
			return nil, nil, fmt.Errorf("tokens: %w", err)
		}
	}
	if cfg.WebhookSecretsFile != "" {
		if secrets, err = auth.LoadSecrets(cfg.WebhookSecretsFile); err != nil {
			return nil, nil, fmt.Errorf("webhook secrets: %w", err)
		}
	}
	return tokens, secrets, nil
}

// wire builds the pipeline and the API on p and resumes pending GitHub
// uploads; the API's queue closes before the NATS connection does.
func wire(ctx context.Context, p *service.Process, cfg *config.Config, tokens *auth.Tokens, secrets *auth.Secrets) error {
	p.HTTPBound = bound
	pipeline, err := ingest.New(ctx, p.Client, ingest.Options{
		MaxUncompressed: cfg.MaxUncompressed,
		SpoolDir:        cfg.SpoolDir,
		StoreTimeout:    cfg.StoreTimeout,
		Log:             p.Log,
		Replicas:        cfg.Streams.Replicas,
	})
	if err != nil {
		return err
	}
	var replay *auth.Replay
	if secrets != nil {
		if replay, err = auth.NewReplay(ctx, p.Client.JetStream(), cfg.ReplayTTL, cfg.Streams.Replicas); err != nil {
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
		Log:             p.Log,
		Metrics:         api.NewMetrics(p.Ops.Registry),
	})
	srv.Register(p.Ops.Mux)
	if err := srv.Resume(ctx); err != nil {
		p.Log.Warn("resuming pending github uploads", "error", err)
	}
	p.OnStop(srv.Close)
	return nil
}
