package main

import (
	"context"
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
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/pkg/runtime/service/kubeclient"
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

// cli is the snapshotter's command line: the service, `bootstrap` and
// `restore-plan`.
var cli = service.Commands(name, run,
	service.BootstrapCommand(bootstrap),
	service.Command{
		Name: "restore-plan", Args: "[--kubeconfig file] namespace/volumesnapshot",
		Summary: "print a snapshot's restore plan: the manifest for kubectl apply -f -, then the steps as YAML comments",
		Run:     restorePlan,
	},
)

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	kube, err := newKube(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	defer kube.stopEvents()
	return service.Run(ctx, name, cfg.Common, stdout, getenv, func(ctx context.Context, p *service.Process) error {
		return wire(ctx, p, cfg, kube)
	})
}

// bootstrap is `snapshotter bootstrap [flags]` (the service's flags).
func bootstrap(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	return cfg.Bootstrap(ctx, name, stdout, func(ctx context.Context, c *events.Client) error {
		return create(ctx, cfg, c)
	})
}

// create is `snapshotter bootstrap`'s work: as the admin NATS user, it
// creates or updates the observations and recommendations buckets and the
// durable consumers of pin and restore requests and of restore
// recommendations; the service then runs with --nats-bind.
func create(ctx context.Context, cfg config.Config, c *events.Client) error {
	if cfg.Observe {
		if _, err := observer.OpenStore(ctx, c.JetStream(), cfg.ObserveBucket, cfg.Streams.Replicas); err != nil {
			return err
		}
	}
	if _, err := restore.OpenRecommendationStore(ctx, c.JetStream(), cfg.RecommendationsBucket, cfg.Streams.Replicas); err != nil {
		return err
	}
	for _, cc := range []events.ConsumerConfig{pins.Consumer(), restore.Consumer(), restore.RecommendationsConsumer()} {
		if err := c.EnsureConsumer(ctx, cc); err != nil {
			return err
		}
	}
	return nil
}

// kube is the snapshotter's access to Kubernetes.
type kube struct {
	rest   *rest.Config
	cs     kubernetes.Interface
	client client.WithWatch
	exec   *hooks.Exec
	// recorder records Kubernetes Events on the policies and Restores; stopEvents
	// flushes and stops it, once the process has stopped.
	recorder   record.EventRecorder
	stopEvents func()
}

// newKube loads the kubeconfig (in-cluster when path is empty) and builds
// the clients.
func newKube(path string) (*kube, error) {
	restCfg, err := kubeConfig(path)
	if err != nil {
		return nil, err
	}
	k := &kube{rest: restCfg}
	if k.cs, err = kubernetes.NewForConfig(restCfg); err != nil {
		return nil, err
	}
	if k.client, err = newClient(restCfg); err != nil {
		return nil, err
	}
	if k.exec, err = hooks.NewExec(restCfg); err != nil {
		return nil, err
	}
	if k.recorder, k.stopEvents, err = eventRecorder(k.cs); err != nil {
		return nil, err
	}
	return k, nil
}

// wire adds the snapshotter's parts to p: the restore-plan API, the
// consumers of pin and restore requests (stopped before the NATS
// connection closes), and the leader's work under leader election.
func wire(ctx context.Context, p *service.Process, cfg config.Config, k *kube) error {
	routeKlog(p.Log)
	m := metrics.New(p.Ops.Registry)
	p.Ops.AddReadiness("kubernetes", func(context.Context) error {
		_, err := k.cs.Discovery().ServerVersion()
		return err
	})
	if cfg.TokensFile != "" {
		tokens, err := apiauth.Load(cfg.TokensFile)
		if err != nil {
			return err
		}
		p.Ops.Mux.Handle(plan.Route, tokens.Require(plan.Handler(k.client, p.Log)))
	} else {
		p.Log.Info("restore-plan API off: no --api-tokens-file")
	}
	recs, err := restore.OpenRecommendationStore(ctx, p.Client.JetStream(), cfg.RecommendationsBucket, cfg.Streams.Replicas)
	if err != nil {
		return err
	}
	lead, err := leaderWork(ctx, p, cfg, k, m, recs)
	if err != nil {
		return err
	}
	if err := consume(ctx, p, cfg, k, m, recs); err != nil {
		return err
	}
	p.Go(func(ctx context.Context) error {
		if !cfg.LeaderElect {
			return lead(ctx)
		}
		return leader.Run(ctx, k.cs, leader.Config{
			Namespace: cfg.LeaseNamespace, Name: cfg.LeaseName, Identity: cfg.Identity,
			LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		}, p.Log, func(ctx context.Context) {
			if err := lead(ctx); err != nil {
				p.Log.Error("controller or observer stopped", "error", err)
			}
		})
	})
	p.Log.Info("snapshotter wired", "namespace", cfg.Namespace, "leader_elect", cfg.LeaderElect, "identity", cfg.Identity)
	return nil
}

// consume starts the durable consumers of pin and restore requests and of
// restore recommendations, which every replica runs (leader or not).
func consume(ctx context.Context, p *service.Process, cfg config.Config, k *kube, m *metrics.Metrics, recs *restore.RecommendationStore) error {
	pinHandler := &pins.Handler{Client: k.client, Log: p.Log, Metrics: m}
	requests := &restore.Requests{Client: k.client, Log: p.Log.With("component", "restore"), Namespace: cfg.Namespace}
	sub, err := p.Client.Consume(ctx, pins.Consumer(), pinHandler.Handle)
	if err != nil {
		return fmt.Errorf("consume pin requests: %w", err)
	}
	p.OnStop(sub.Stop)
	restoreSub, err := p.Client.Consume(ctx, restore.Consumer(), requests.Handle)
	if err != nil {
		return fmt.Errorf("consume restore requests: %w", err)
	}
	p.OnStop(restoreSub.Stop)
	recommendations := &restore.RecommendationHandler{Store: recs, Log: p.Log.With("component", "restore"), Metrics: m}
	recSub, err := p.Client.Consume(ctx, restore.RecommendationsConsumer(), recommendations.Handle)
	if err != nil {
		return fmt.Errorf("consume restore recommendations: %w", err)
	}
	p.OnStop(recSub.Stop)
	return nil
}

// leaderWork returns the leader's work: the controller, the Restore
// executor and (with --observe) the workload observer, which restarts on
// its own failures and never stops the controller.
func leaderWork(ctx context.Context, p *service.Process, cfg config.Config, k *kube, m *metrics.Metrics, recs *restore.RecommendationStore) (func(context.Context) error, error) {
	ctrl := &controller.Controller{
		Client: k.client, Events: p.Client, Hooks: k.exec, Clock: clock.RealClock{}, Log: p.Log, Recorder: k.recorder,
		Metrics: m, Namespace: cfg.Namespace, Resync: cfg.Resync, EncryptionAllow: cfg.Allow,
		EncryptionTable: encryptionTable,
	}
	restores := &restore.Executor{
		Client: k.client, Events: p.Client, Clock: clock.RealClock{}, Log: p.Log.With("component", "restore"), Namespace: cfg.Namespace, Metrics: m,
		Recorder: k.recorder, Recommendations: recs, SafetySnapshotTTL: cfg.SafetySnapshotTTL,
	}
	var obs *observer.Observer
	if cfg.Observe {
		store, err := observer.OpenStore(ctx, p.Client.JetStream(), cfg.ObserveBucket, cfg.Streams.Replicas)
		if err != nil {
			return nil, err
		}
		obs = &observer.Observer{
			Config: k.rest, Owners: k.client, Events: p.Client, Store: store, Clock: clock.RealClock{}, Log: p.Log.With("component", "observer"),
			Metrics: m, Namespace: cfg.Namespace, Resync: cfg.ObserveResync, WithoutSecrets: !cfg.ObserveTLSSecrets,
		}
	}
	return func(ctx context.Context) error {
		lg, lctx := errgroup.WithContext(ctx)
		lg.Go(func() error { return ctrl.Run(lctx) })
		lg.Go(func() error { return restores.Run(lctx) })
		if obs != nil {
			lg.Go(func() error { return observeForever(lctx, obs, p.Log) })
		}
		return lg.Wait()
	}, nil
}

// observeForever runs the observer until ctx ends, starting it again 5 s
// after each failure (its KV or informers): the observer's failures are its
// own.
func observeForever(ctx context.Context, obs *observer.Observer, log *slog.Logger) error {
	for ctx.Err() == nil {
		if err := obs.Run(ctx); err != nil {
			log.Error("observer stopped; restarting", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}
	return nil
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
