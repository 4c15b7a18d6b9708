package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/stateguard/stateguard/pkg/events/service"
	"github.com/stateguard/stateguard/pkg/events/service/kubeclient"

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

// Name is the service name.
const Name = "certwatcher"

// Run is certwatcher's entry point (service.RunFunc).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return RunWith(ctx, args, getenv, stdout, Hooks{})
}

// Hooks let tests observe a running certwatcher.
type Hooks struct {
	// HTTPBound receives the HTTP server's address.
	HTTPBound func(net.Addr)
	// RestConfig replaces the kubeconfig lookup.
	RestConfig *rest.Config
	// Clock replaces the real clock.
	Clock clock.WithTicker
}

// RunWith is Run with hooks.
func RunWith(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, h Hooks) error {
	if len(args) > 0 && args[0] == "bootstrap" {
		return bootstrap(ctx, args[1:], getenv, stdout)
	}
	cfg, err := config.Load(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := service.NewLogger(stdout, cfg.LogLevel, Name)
	if err != nil {
		return err
	}
	kubeclient.RouteKlog(log.With("component", "client-go"))
	clk := h.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	otelShutdown, err := service.SetupOTel(ctx, Name, getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := otelShutdown(sctx); err != nil {
			log.Warn("otel shutdown", "error", err)
		}
	}()

	ops := service.NewOps()
	client, err := cfg.Connect(ctx, Name, log, ops.Registry)
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

	kv, err := marks.Open(ctx, client.JetStream(), cfg.KVBucket, cfg.Streams.Replicas, cfg.MarkTTL)
	if err != nil {
		return err
	}

	changed := make(chan []inventory.Record, 4096)
	store := inventory.New(func(recs []inventory.Record) {
		select {
		case changed <- recs:
		default: // the periodic evaluation catches up
		}
	})
	ops.Registry.MustRegister(&metrics.Collector{Store: store, Clock: clk})
	n := &notify.Notifier{Store: store, Thresholds: cfg.Thresholds, Marks: kv, Publisher: client, Clock: clk, Log: log}
	obs := &observe.Observer{Store: store, Publisher: client, Clock: clk, Log: log}
	resync := make(chan struct{}, 1)

	g, gctx := errgroup.WithContext(ctx)
	var executor *rotation.Executor
	if cfg.UseCluster() {
		rc := h.RestConfig
		if rc == nil {
			if rc, err = kubeclient.Config(cfg.Kubeconfig); err != nil {
				return err
			}
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
			PEMKeyPatterns: cfg.PEMKeyPatterns, Store: store, Log: log,
		})
		if err != nil {
			return err
		}
		n.Context = d
		obs.Context = d
		d.Start(gctx)
		synced := make(chan struct{})
		obs.Ready = func() bool {
			select {
			case <-synced:
				return true
			default:
				return false
			}
		}
		ops.AddReadiness("informers", func(context.Context) error {
			select {
			case <-synced:
				return nil
			default:
				return errors.New("informers not synced yet")
			}
		})
		g.Go(func() error {
			if err := d.WaitForSync(gctx); err != nil {
				return nil // shutting down
			}
			close(synced)
			resync <- struct{}{} // observe everything, now that users are known
			log.Info("kubernetes discovery synced", "certificates", store.Len(), "cert_manager", d.CertManagerEnabled())
			return nil
		})
		if cfg.Rotation {
			executor, err = rotation.New(rotation.Options{
				Client: cs, Dynamic: dyn, CertManagerServed: d.CertManagerEnabled, Events: client, Marks: kv,
				Log: log, Clock: clk, DryRun: cfg.DryRun, Rate: cfg.RotationRate.PerSecond(), Burst: cfg.RotationBurst,
				ReissueTimeout: cfg.ReissueTimeout, RolloutTimeout: cfg.RolloutTimeout, VerifyTimeout: cfg.VerifyTimeout,
			})
			if err != nil {
				return err
			}
		}
	}
	if len(cfg.WatchDirs) > 0 {
		w := &dirwatch.Watcher{Dirs: cfg.WatchDirs, Store: store, Log: log, Rescan: cfg.DirRescan}
		g.Go(func() error { return w.Run(gctx) })
	}
	g.Go(func() error { return evaluateLoop(gctx, n, obs, changed, resync, clk, cfg.EvaluateInterval, log) })
	g.Go(func() error {
		return service.ServeTLS(gctx, log, cfg.HTTPAddr, cfg.TLS, ops.Mux, cfg.ShutdownTimeout, h.HTTPBound)
	})
	if executor != nil {
		sub, err := executor.Consume(gctx, cfg.ConsumerName, cfg.ConsumerAckWait)
		if err != nil {
			return err
		}
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			return sub.Stop(sctx)
		})
	}
	log.Info("certwatcher started", "cluster", cfg.UseCluster(), "watch_dirs", cfg.WatchDirs, "dry_run", cfg.DryRun)
	err = g.Wait()
	log.Info("certwatcher stopped")
	return err
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
