package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/service"
	"github.com/stateguard/stateguard/services/correlator/internal/api"
	"github.com/stateguard/stateguard/services/correlator/internal/audit"
	"github.com/stateguard/stateguard/services/correlator/internal/config"
	"github.com/stateguard/stateguard/services/correlator/internal/engine"
	"github.com/stateguard/stateguard/services/correlator/internal/report"
)

// bound, when set (by tests), learns the HTTP server's address.
var bound func(net.Addr)

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "bootstrap" {
		return bootstrap(ctx, args[1:], getenv, stdout)
	}
	cfg, err := config.Load(args, getenv, os.ReadFile)
	if err != nil {
		return err
	}
	log, err := service.NewLogger(stdout, cfg.LogLevel, "correlator")
	if err != nil {
		return err
	}
	shutdownOTel, err := service.SetupOTel(ctx, "correlator", getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownOTel(sctx)
	}()
	ops := service.NewOps()
	client, err := cfg.Connect(ctx, "correlator", log, ops.Registry)
	if err != nil {
		return err
	}
	closeClient := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		return client.Close(sctx)
	}
	service.Watch(ops, client)
	eng, err := engine.New(ctx, engine.Options{
		Client: client, Rules: cfg.Rules, RulesVersion: cfg.RulesVersion, Bucket: cfg.Bucket, Replicas: cfg.KVReplicas,
		Workers: cfg.Workers, CacheSize: cfg.CacheNamespaces, Consumer: cfg.Consumer, Log: log, Registerer: ops.Registry,
	})
	if err != nil {
		return errors.Join(err, closeClient())
	}
	objs, err := keepRules(ctx, client, cfg)
	if err != nil {
		// The decisions still carry the rules' version; audit verify then
		// needs the rules file given with --rules-file.
		log.Error("the rules file could not be kept in the audit bucket; no scheduled report", "bucket", audit.Bucket, "rules_version", cfg.RulesVersion, "error", err.Error())
	}
	gen := report.Generator{States: eng, Read: func(ctx context.Context) ([]audit.Record, error) {
		return audit.Read(ctx, client.JetStream(), audit.Streams)
	}}
	if cfg.TokensFile != "" {
		tokens, err := loadTokens(cfg.TokensFile, cfg.OperatorTokensFile)
		if err != nil {
			return errors.Join(err, closeClient())
		}
		api.Register(ops.Mux, eng, tokens, log, time.Now, api.WithPublisher(client))
		api.RegisterReport(ops.Mux, tokens, gen.Handler(time.Now, api.ReportProblem(log)))
	} else {
		log.Warn("no --api-tokens-file: the /v1 API is off")
	}
	if err := eng.Start(ctx); err != nil {
		return errors.Join(err, closeClient())
	}
	log.Info("correlator started", "bucket", cfg.Bucket, "workers", cfg.Workers, "threshold", cfg.Rules.Threshold.String())

	g, gctx := errgroup.WithContext(ctx)
	if cfg.ReportInterval > 0 && objs != nil {
		sched := report.Schedule{Generator: gen, Every: cfg.ReportInterval, Objects: objs, RulesVersion: cfg.RulesVersion,
			Publish:  func(ctx context.Context, ev events.Event) error { return client.Publish(ctx, ev) },
			NewEvent: client.NewEvent, Log: log, Now: time.Now}
		g.Go(func() error { return sched.Run(gctx) })
	}
	g.Go(func() error {
		return service.ServeTLS(gctx, log, cfg.HTTPAddr, cfg.TLS, ops.Mux, cfg.ShutdownTimeout, bound)
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		return eng.Stop(sctx)
	})
	err = g.Wait()
	err = errors.Join(err, closeClient())
	log.Info("correlator stopped")
	return err
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
