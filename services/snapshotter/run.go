package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/service"
	"github.com/stateguard/stateguard/pkg/events/service/kubeclient"
	"github.com/stateguard/stateguard/services/snapshotter/internal/apiauth"
	"github.com/stateguard/stateguard/services/snapshotter/internal/config"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
	"github.com/stateguard/stateguard/services/snapshotter/internal/hooks"
	"github.com/stateguard/stateguard/services/snapshotter/internal/leader"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
	"github.com/stateguard/stateguard/services/snapshotter/internal/observer"
	"github.com/stateguard/stateguard/services/snapshotter/internal/pins"
	"github.com/stateguard/stateguard/services/snapshotter/internal/plan"
	"github.com/stateguard/stateguard/services/snapshotter/internal/restore"
)

const name = "snapshotter"

// encryptionTable, when set (by tests), replaces the table of documented
// driver encryption parameters (encryption.Documented): the test cluster's
// CSI driver is in no production table.
var encryptionTable []encryption.Driver

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "restore-plan" {
		return restorePlan(ctx, args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == "bootstrap" {
		return bootstrap(ctx, args[1:], getenv, stdout)
	}
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := service.NewLogger(stdout, cfg.LogLevel, name)
	if err != nil {
		return err
	}
	routeKlog(log)
	shutdownOTel, err := service.SetupOTel(ctx, name, getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := shutdownOTel(sctx); err != nil {
			log.Warn("otel shutdown", "error", err)
		}
	}()

	restCfg, err := kubeConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	kc, err := newClient(restCfg)
	if err != nil {
		return err
	}
	exec, err := hooks.NewExec(restCfg)
	if err != nil {
		return err
	}

	ops := service.NewOps()
	m := metrics.New(ops.Registry)
	ev, err := cfg.Connect(ctx, name, log, ops.Registry)
	if err != nil {
		return err
	}
	service.Watch(ops, ev)
	ops.AddReadiness("kubernetes", func(context.Context) error {
		_, err := cs.Discovery().ServerVersion()
		return err
	})
	if cfg.TokensFile != "" {
		tokens, err := apiauth.Load(cfg.TokensFile)
		if err != nil {
			return err
		}
		ops.Mux.Handle(plan.Route, tokens.Require(plan.Handler(kc, log)))
	} else {
		log.Info("restore-plan API off: no --api-tokens-file")
	}

	recorder, stopEvents, err := eventRecorder(cs)
	if err != nil {
		return err
	}
	defer stopEvents()
	ctrl := &controller.Controller{
		Client: kc, Events: ev, Hooks: exec, Clock: clock.RealClock{}, Log: log, Recorder: recorder,
		Metrics: m, Namespace: cfg.Namespace, Resync: cfg.Resync, EncryptionAllow: cfg.Allow,
		EncryptionTable: encryptionTable,
	}
	pinHandler := &pins.Handler{Client: kc, Log: log, Metrics: m}
	restores, restoreConsumers, err := restoreWork(ctx, ev, kc, cfg, log.With("component", "restore"), m, recorder)
	if err != nil {
		_ = ev.Close(context.Background())
		return err
	}
	var obs *observer.Observer
	if cfg.Observe {
		store, err := observer.OpenStore(ctx, ev.JetStream(), cfg.ObserveBucket, cfg.Streams.Replicas)
		if err != nil {
			_ = ev.Close(context.Background())
			return err
		}
		obs = &observer.Observer{
			Config: restCfg, Owners: kc, Events: ev, Store: store, Clock: clock.RealClock{}, Log: log.With("component", "observer"),
			Metrics: m, Namespace: cfg.Namespace, Resync: cfg.ObserveResync, WithoutSecrets: !cfg.ObserveTLSSecrets,
		}
	}
	// lead is the leader's work: the controller, the Restores and the
	// observer.
	lead := func(ctx context.Context) error {
		lg, lctx := errgroup.WithContext(ctx)
		lg.Go(func() error { return ctrl.Run(lctx) })
		lg.Go(func() error { return restores.Run(lctx) })
		if obs != nil {
			lg.Go(func() error {
				// The observer's failures (KV, informers) are its own: it
				// starts again, and never stops the controller.
				for lctx.Err() == nil {
					if err := obs.Run(lctx); err != nil {
						log.Error("observer stopped; restarting", "error", err)
						select {
						case <-lctx.Done():
						case <-time.After(5 * time.Second):
						}
					}
				}
				return nil
			})
		}
		return lg.Wait()
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return service.ServeTLS(gctx, log, cfg.HTTPAddr, cfg.TLS, ops.Mux, cfg.ShutdownTimeout, nil)
	})
	subs, err := consumeAll(gctx, ev, append([]consumer{{pins.Consumer(), pinHandler.Handle}}, restoreConsumers...))
	if err != nil {
		_ = ev.Close(context.Background())
		return err
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		return stopAll(sctx, subs)
	})
	g.Go(func() error {
		if !cfg.LeaderElect {
			return lead(gctx)
		}
		return leader.Run(gctx, cs, leader.Config{
			Namespace: cfg.LeaseNamespace, Name: cfg.LeaseName, Identity: cfg.Identity,
			LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		}, log, func(ctx context.Context) {
			if err := lead(ctx); err != nil {
				log.Error("controller or observer stopped", "error", err)
			}
		})
	})
	log.Info("snapshotter started", "namespace", cfg.Namespace, "leader_elect", cfg.LeaderElect, "identity", cfg.Identity)
	err = g.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if cerr := ev.Close(cctx); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close events client: %w", cerr))
	}
	log.Info("snapshotter stopped")
	return err
}

// routeKlog sends client-go's klog output to log, once per process.
func routeKlog(log *slog.Logger) { kubeclient.RouteKlog(log) }

// kubeConfig loads path, or the in-cluster configuration when path is empty.
func kubeConfig(path string) (*rest.Config, error) {
	cfg, err := kubeclient.Config(path)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "stateguard-snapshotter"
	cfg.Timeout = 30 * time.Second
	return cfg, nil
}

// consumer is a durable consumer and its handler.
type consumer struct {
	cfg    events.ConsumerConfig
	handle events.Handler
}

// consumeAll starts the consumers; on an error it stops those started.
// Stopped while starting (ctx done) is not an error: the caller's group is
// stopping too.
func consumeAll(ctx context.Context, ev *events.Client, consumers []consumer) ([]*events.Subscription, error) {
	subs := make([]*events.Subscription, 0, len(consumers))
	for _, c := range consumers {
		s, err := ev.Consume(ctx, c.cfg, c.handle)
		if err != nil && ctx.Err() != nil {
			return subs, nil
		}
		if err != nil {
			_ = stopAll(context.Background(), subs)
			return nil, fmt.Errorf("consume %s: %w", c.cfg.Name, err)
		}
		subs = append(subs, s)
	}
	return subs, nil
}

// stopAll stops the subscriptions.
func stopAll(ctx context.Context, subs []*events.Subscription) error {
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Stop(ctx))
	}
	return errors.Join(errs...)
}

// restoreWork is the Restore executor (the leader's) and the consumers of
// restore requests and recommendations (every replica's).
func restoreWork(ctx context.Context, ev *events.Client, kc client.WithWatch, cfg config.Config, log *slog.Logger, m *metrics.Metrics, recorder record.EventRecorder) (*restore.Executor, []consumer, error) {
	recs, err := restore.OpenRecommendationStore(ctx, ev.JetStream(), cfg.RecommendationsBucket, cfg.Streams.Replicas)
	if err != nil {
		return nil, nil, err
	}
	x := &restore.Executor{
		Client: kc, Events: ev, Clock: clock.RealClock{}, Log: log, Namespace: cfg.Namespace, Metrics: m,
		Recorder: recorder, Recommendations: recs, SafetySnapshotTTL: cfg.SafetySnapshotTTL,
	}
	requests := &restore.Requests{Client: kc, Log: log, Namespace: cfg.Namespace}
	recommendations := &restore.RecommendationHandler{Store: recs, Log: log, Metrics: m}
	return x, []consumer{
		{restore.Consumer(), requests.Handle},
		{restore.RecommendationsConsumer(), recommendations.Handle},
	}, nil
}

// eventRecorder records Kubernetes Events (core/v1) on the policies; the
// returned function flushes and stops it.
func eventRecorder(cs kubernetes.Interface) (record.EventRecorder, func(), error) {
	scheme, err := controller.Scheme()
	if err != nil {
		return nil, nil, err
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	return b.NewRecorder(scheme, corev1.EventSource{Component: "stateguard-snapshotter"}), b.Shutdown, nil
}

func newClient(cfg *rest.Config) (client.WithWatch, error) {
	scheme, err := controller.Scheme()
	if err != nil {
		return nil, err
	}
	return client.NewWithWatch(cfg, client.Options{Scheme: scheme})
}
