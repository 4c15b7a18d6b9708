package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/pkg/runtime/service/kubeclient"

	"github.com/stateguard/stateguard/services/certwatcher/internal/config"
	"github.com/stateguard/stateguard/services/certwatcher/internal/dirwatch"
	"github.com/stateguard/stateguard/services/certwatcher/internal/discovery"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
	"github.com/stateguard/stateguard/services/certwatcher/internal/marks"
	"github.com/stateguard/stateguard/services/certwatcher/internal/metrics"
	"github.com/stateguard/stateguard/services/certwatcher/internal/notify"
	"github.com/stateguard/stateguard/services/certwatcher/internal/observe"
	"github.com/stateguard/stateguard/services/certwatcher/internal/rotation"
)

const name = "certwatcher"

// cli is certwatcher's command line: the service and `bootstrap`.
var cli = service.Commands(name, run, service.BootstrapCommand(bootstrap))

// bound, when set (by tests), receives the HTTP server's address.
var bound func(net.Addr)

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	return service.Run(ctx, name, cfg.Common, stdout, getenv, func(ctx context.Context, p *service.Process) error {
		return wire(ctx, p, cfg, clock.RealClock{})
	})
}

// bootstrap is `certwatcher bootstrap [flags]` (the service's flags).
func bootstrap(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	return cfg.Bootstrap(ctx, name, stdout, func(ctx context.Context, c *events.Client) error {
		return create(ctx, cfg, c)
	})
}

// create is `certwatcher bootstrap`'s work: as the admin NATS user, it
// creates or updates the marks bucket and (with rotation on) the durable
// consumer of rotation requests; the service then runs with --nats-bind.
func create(ctx context.Context, cfg config.Config, c *events.Client) error {
	if _, err := marks.Open(ctx, c.JetStream(), cfg.KVBucket, cfg.Streams.Replicas, cfg.MarkTTL); err != nil {
		return err
	}
	if !cfg.UseCluster() || !cfg.Rotation {
		return nil
	}
	return c.EnsureConsumer(ctx, rotation.ConsumerConfig(cfg.ConsumerName, cfg.ConsumerAckWait))
}

// watcher is certwatcher's running parts: the inventory, what notifies and
// observes from it, and the channels that wake the evaluation.
type watcher struct {
	store   *inventory.Store
	notify  *notify.Notifier
	observe *observe.Observer
	marks   *marks.Store
	changed chan []inventory.Record
	resync  chan struct{}
}

// wire adds certwatcher's parts to p: the inventory fed by Kubernetes
// discovery and the watched directories, the evaluation loop, and the
// rotation executor's consumer.
func wire(ctx context.Context, p *service.Process, cfg config.Config, clk clock.WithTicker) error {
	kubeclient.RouteKlog(p.Log.With("component", "client-go"))
	p.HTTPBound = bound
	kv, err := marks.Open(ctx, p.Client.JetStream(), cfg.KVBucket, cfg.Streams.Replicas, cfg.MarkTTL)
	if err != nil {
		return err
	}
	w := &watcher{marks: kv, changed: make(chan []inventory.Record, 4096), resync: make(chan struct{}, 1)}
	w.store = inventory.New(func(recs []inventory.Record) {
		select {
		case w.changed <- recs:
		default: // the periodic evaluation catches up
		}
	})
	p.Ops.Registry.MustRegister(&metrics.Collector{Store: w.store, Clock: clk})
	w.notify = &notify.Notifier{Store: w.store, Thresholds: cfg.Thresholds, Marks: kv, Publisher: p.Client, Clock: clk, Log: p.Log}
	w.observe = &observe.Observer{Store: w.store, Publisher: p.Client, Clock: clk, Log: p.Log}
	if cfg.UseCluster() {
		if err := w.watchCluster(ctx, p, cfg, clk); err != nil {
			return err
		}
	}
	if len(cfg.WatchDirs) > 0 {
		d := &dirwatch.Watcher{Dirs: cfg.WatchDirs, Store: w.store, Log: p.Log, Rescan: cfg.DirRescan}
		p.Go(d.Run)
	}
	p.Go(func(ctx context.Context) error {
		return evaluateLoop(ctx, w.notify, w.observe, w.changed, w.resync, clk, cfg.EvaluateInterval, p.Log)
	})
	p.Log.Info("certwatcher wired", "cluster", cfg.UseCluster(), "watch_dirs", cfg.WatchDirs, "dry_run", cfg.DryRun)
	return nil
}

// watchCluster starts Kubernetes discovery into the inventory (readiness
// waits for its informers) and, with --rotation, the rotation executor's
// consumer.
func (w *watcher) watchCluster(ctx context.Context, p *service.Process, cfg config.Config, clk clock.WithTicker) error {
	rc, err := kubeclient.Config(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	cs, err := discovery.NewClient(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	d, err := discovery.New(ctx, discovery.Options{
		Client: cs, Dynamic: dyn, Namespaces: cfg.Namespaces, LabelSelector: cfg.LabelSelector,
		PEMKeyPatterns: cfg.PEMKeyPatterns, Store: w.store, Log: p.Log,
	})
	if err != nil {
		return err
	}
	w.discover(ctx, p, d)
	if !cfg.Rotation {
		return nil
	}
	executor, err := rotation.New(rotation.Options{
		Client: cs, Dynamic: dyn, CertManagerServed: d.CertManagerEnabled, Events: p.Client, Marks: w.marks,
		Log: p.Log, Clock: clk, DryRun: cfg.DryRun, Rate: cfg.RotationRate.PerSecond(), Burst: cfg.RotationBurst,
		ReissueTimeout: cfg.ReissueTimeout, RolloutTimeout: cfg.RolloutTimeout, VerifyTimeout: cfg.VerifyTimeout,
	})
	if err != nil {
		return err
	}
	sub, err := executor.Consume(ctx, cfg.ConsumerName, cfg.ConsumerAckWait)
	if err != nil {
		return err
	}
	p.OnStop(sub.Stop)
	return nil
}

// discover starts d; once its informers have synced, /readyz passes, the
// observer knows each certificate's users, and everything is observed.
func (w *watcher) discover(ctx context.Context, p *service.Process, d *discovery.Discovery) {
	w.notify.Context = d
	w.observe.Context = d
	d.Start(ctx)
	synced := make(chan struct{})
	isSynced := func() bool {
		select {
		case <-synced:
			return true
		default:
			return false
		}
	}
	w.observe.Ready = isSynced
	p.Ops.AddReadiness("informers", func(context.Context) error {
		if !isSynced() {
			return errors.New("informers not synced yet")
		}
		return nil
	})
	p.Go(func(ctx context.Context) error {
		if err := d.WaitForSync(ctx); err != nil {
			return nil // shutting down
		}
		close(synced)
		w.resync <- struct{}{} // observe everything, now that users are known
		p.Log.Info("kubernetes discovery synced", "certificates", w.store.Len(), "cert_manager", d.CertManagerEnabled())
		return nil
	})
}

// evaluateLoop evaluates and observes changed records as they arrive and
// every record each interval (as time passes thresholds, and as users
// change: a pod that starts or stops mounting a Secret is seen there) and
// when asked to resync.
func evaluateLoop(ctx context.Context, n *notify.Notifier, obs *observe.Observer, changed <-chan []inventory.Record, resync <-chan struct{}, clk clock.WithTicker, every time.Duration, log *slog.Logger) error {
	t := clk.NewTicker(every)
	defer t.Stop()
	all := func() {
		if err := n.EvaluateAll(ctx); err != nil && ctx.Err() == nil {
			log.Warn("expiry evaluation failed; retried on the next pass", "error", err)
		}
		if err := obs.ObserveAll(ctx); err != nil && ctx.Err() == nil {
			log.Warn("certificate observation failed; retried on the next pass", "error", err)
		}
	}
	all() // the start-up resync (without Kubernetes; with it, once synced)
	for {
		select {
		case <-ctx.Done():
			return nil
		case recs := <-changed:
			if err := n.Evaluate(ctx, recs); err != nil && ctx.Err() == nil {
				log.Warn("expiry evaluation failed; retried on the next pass", "error", err)
			}
			if err := obs.Observe(ctx, recs); err != nil && ctx.Err() == nil {
				log.Warn("certificate observation failed; retried on the next pass", "error", err)
			}
		case <-resync:
			all()
		case <-t.C():
			all()
		}
	}
}
