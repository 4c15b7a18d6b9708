package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/correlator/internal/api"
	"github.com/stateguard/stateguard/services/correlator/internal/audit"
	"github.com/stateguard/stateguard/services/correlator/internal/config"
	"github.com/stateguard/stateguard/services/correlator/internal/engine"
	"github.com/stateguard/stateguard/services/correlator/internal/report"
)

const name = "correlator"

// bound, when set (by tests), learns the HTTP server's address.
var bound func(net.Addr)

// cli is the correlator's command line: the service and `bootstrap`.
var cli = service.Commands(name, run, service.BootstrapCommand(bootstrap))

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, os.ReadFile, stdout)
	if err != nil {
		return err
	}
	return service.Run(ctx, name, cfg.Common, stdout, getenv, func(ctx context.Context, p *service.Process) error {
		return wire(ctx, p, cfg)
	})
}

// bootstrap is `correlator bootstrap [flags]` (the service's flags).
func bootstrap(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, os.ReadFile, stdout)
	if err != nil {
		return err
	}
	return cfg.Bootstrap(ctx, name, stdout, func(ctx context.Context, c *events.Client) error {
		return create(ctx, cfg, c)
	})
}

// create is `correlator bootstrap`'s work: as the admin NATS user, it
// creates or updates the state bucket, the audit bucket and the engine's
// durable consumers; the service then runs with --nats-bind.
func create(ctx context.Context, cfg config.Config, c *events.Client) error {
	if _, err := engine.New(ctx, engine.Options{Client: c, Rules: cfg.Rules, Bucket: cfg.Bucket, Replicas: cfg.KVReplicas}); err != nil {
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
}

// wire starts the engine and the /v1 API on p; the engine stops before the
// NATS connection closes.
func wire(ctx context.Context, p *service.Process, cfg config.Config) error {
	p.HTTPBound = bound
	eng, err := engine.New(ctx, engine.Options{
		Client: p.Client, Rules: cfg.Rules, RulesVersion: cfg.RulesVersion, Bucket: cfg.Bucket, Replicas: cfg.KVReplicas,
		Workers: cfg.Workers, CacheSize: cfg.CacheNamespaces, Consumer: cfg.Consumer, Log: p.Log, Registerer: p.Ops.Registry,
	})
	if err != nil {
		return err
	}
	objs, err := keepRules(ctx, p.Client, cfg)
	if err != nil {
		// The decisions still carry the rules' version; audit verify then
		// needs the rules file given with --rules-file.
		p.Log.Error("the rules file could not be kept in the audit bucket; no scheduled report", "bucket", audit.Bucket, "rules_version", cfg.RulesVersion, "error", err.Error())
	}
	gen := report.Generator{States: eng, Read: func(ctx context.Context) ([]audit.Record, error) {
		return audit.Read(ctx, p.Client.JetStream(), audit.Streams)
	}}
	if cfg.TokensFile != "" {
		tokens, err := loadTokens(cfg.TokensFile, cfg.OperatorTokensFile)
		if err != nil {
			return err
		}
		api.Register(p.Ops.Mux, eng, tokens, p.Log, time.Now, api.WithPublisher(p.Client))
		api.RegisterReport(p.Ops.Mux, tokens, gen.Handler(time.Now, api.ReportProblem(p.Log)))
	} else {
		p.Log.Warn("no --api-tokens-file: the /v1 API is off")
	}
	if err := eng.Start(ctx); err != nil {
		return err
	}
	p.Log.Info("correlator engine started", "bucket", cfg.Bucket, "workers", cfg.Workers, "threshold", cfg.Rules.Threshold.String())
	p.OnStop(eng.Stop)
	if cfg.ReportInterval > 0 && objs != nil {
		sched := report.Schedule{Generator: gen, Every: cfg.ReportInterval, Objects: objs, RulesVersion: cfg.RulesVersion,
			Publish:  func(ctx context.Context, ev events.Event) error { return p.Client.Publish(ctx, ev) },
			NewEvent: p.Client.NewEvent, Log: p.Log, Now: time.Now}
		p.Go(sched.Run)
	}
	return nil
}

// keepRules stores the rules file in the audit bucket under its version,
// so an audit's replay finds the rules every decision names.
func keepRules(ctx context.Context, client *events.Client, cfg config.Config) (*audit.Objects, error) {
	objs, err := audit.OpenObjects(ctx, client.JetStream(), cfg.KVReplicas)
	if err != nil {
		return nil, err
	}
	if _, err := objs.Put(ctx, audit.RulesObject(cfg.RulesVersion), "application/yaml", cfg.RulesFile); err != nil {
		return nil, err
	}
	return objs, nil
}

// loadTokens reads the read tokens and, when given, the operator tokens.
func loadTokens(readFile, operatorFile string) (api.Tokens, error) {
	var all api.Tokens
	for _, f := range []struct {
		path  string
		scope api.Scope
	}{{readFile, api.ScopeRead}, {operatorFile, api.ScopeOperator}} {
		if f.path == "" {
			continue
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			return all, fmt.Errorf("%s tokens file: %w", f.scope, err)
		}
		t, err := api.ParseTokens(data, f.scope)
		if err != nil {
			return all, fmt.Errorf("%s tokens file %s: %w", f.scope, f.path, err)
		}
		all = all.Join(t)
	}
	return all, nil
}
