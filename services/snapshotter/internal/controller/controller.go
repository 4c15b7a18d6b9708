package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/pruning"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/reporting"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/restoretests"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/slots"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
	"github.com/stateguard/stateguard/services/snapshotter/internal/hooks"
	"github.com/stateguard/stateguard/services/snapshotter/internal/kubewatch"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
	"github.com/stateguard/stateguard/services/snapshotter/internal/policy"
	"github.com/stateguard/stateguard/services/snapshotter/internal/schedule"
)

// EventRecorder records a Kubernetes Event on an object;
// k8s.io/client-go/tools/record.EventRecorder is one.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Scheme returns a scheme with every type the snapshotter reads or writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, storagev1.AddToScheme, batchv1.AddToScheme, snapv1.AddToScheme, v1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Controller snapshots the PVCs of SnapshotPolicies.
type Controller struct {
	// Client reads and writes Kubernetes objects; a client.WithWatch also
	// lets Run react to VolumeSnapshot changes at once.
	Client client.Client
	// Events publishes the snapshot events.
	Events events.Publisher
	// Hooks runs consistency hooks.
	Hooks hooks.Executor
	// Clock is the time source (a fake clock in tests).
	Clock clock.Clock
	// Log is the logger.
	Log *slog.Logger
	// Recorder records Kubernetes Events on policies (a
	// record.EventRecorder); nil records none.
	Recorder EventRecorder
	// Metrics are updated as the controller works; nil disables them.
	Metrics *metrics.Metrics
	// Namespace limits the controller to one namespace; "" watches all.
	Namespace string
	// Resync bounds the wait between passes (default 30s).
	Resync time.Duration
	// EncryptionTable is the table of documented driver encryption
	// parameters; nil means encryption.Documented.
	EncryptionTable []encryption.Driver
	// EncryptionAllow is the operator's allowlist (--encryption-allow).
	EncryptionAllow []encryption.Allow
	// Passes, when not nil, is called after every pass (tests count them).
	Passes func()
}

func (c *Controller) metrics() *metrics.Metrics {
	if c.Metrics == nil {
		c.Metrics = metrics.New(nil)
	}
	return c.Metrics
}

// taker is the schedule/slots job (package slots).
func (c *Controller) taker() *slots.Taker {
	return &slots.Taker{
		Client: c.Client, Events: c.Events, Hooks: c.Hooks, Clock: c.Clock, Log: c.Log, Recorder: c.Recorder,
		Metrics: c.metrics(), EncryptionTable: c.EncryptionTable, EncryptionAllow: c.EncryptionAllow,
	}
}

// reporter is the reporting job (package reporting).
func (c *Controller) reporter() *reporting.Reporter {
	return &reporting.Reporter{Client: c.Client, Events: c.Events, Clock: c.Clock, Log: c.Log, Metrics: c.metrics(), Namespace: c.Namespace}
}

// pruner is the retention job (package pruning).
func (c *Controller) pruner() *pruning.Pruner {
	return &pruning.Pruner{Client: c.Client, Clock: c.Clock, Log: c.Log, Metrics: c.metrics()}
}

// tester is the restore-test job (package restoretests).
func (c *Controller) tester() *restoretests.Tester {
	return &restoretests.Tester{Client: c.Client, Events: c.Events, Clock: c.Clock, Log: c.Log, Metrics: c.metrics()}
}

// Run makes passes until ctx ends: at the next scheduled slot, at least every
// Resync, and whenever a managed VolumeSnapshot changes.
func (c *Controller) Run(ctx context.Context) error {
	resync := c.Resync
	if resync <= 0 {
		resync = 30 * time.Second
	}
	trigger := make(chan struct{}, 1)
	if w, ok := c.Client.(client.WithWatch); ok {
		go c.watch(ctx, w, trigger)
	}
	for {
		next, err := c.Reconcile(ctx)
		if err != nil && ctx.Err() == nil {
			c.Log.Error("reconcile pass failed", "error", err)
		}
		wait := resync
		if !next.IsZero() {
			if d := next.Sub(c.Clock.Now()); d < wait {
				wait = max(d, 0)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.Clock.After(wait):
		case <-trigger:
		}
	}
}

func (c *Controller) watch(ctx context.Context, w client.WithWatch, trigger chan<- struct{}) {
	kubewatch.Trigger(ctx, c.Log, "volume snapshots", w, &snapv1.VolumeSnapshotList{}, trigger, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}, client.InNamespace(c.Namespace))
}

// Reconcile makes one pass over every policy and returns the earliest next
// slot (zero when no policy is scheduled). A valid policy runs its due slot
// and then its on-demand request, if any (slots.Taker.OnDemand). Each policy is read on its own
// (policy.Parse): one whose spec does not parse gets Ready=False and is
// skipped, and the others run as if it did not exist. The error joins what
// failed while running valid policies; invalid ones are reported on the
// policy, not here.
func (c *Controller) Reconcile(ctx context.Context) (time.Time, error) {
	if c.Passes != nil {
		defer c.Passes()
	}
	var policies v1alpha1.SnapshotPolicyList
	if err := c.Client.List(ctx, &policies, client.InNamespace(c.Namespace)); err != nil {
		return time.Time{}, fmt.Errorf("list snapshot policies: %w", err)
	}
	type runnable struct {
		p    *v1alpha1.SnapshotPolicy
		spec policy.Spec
	}
	var valid []runnable
	var errs []error
	var next time.Time
	earliest := func(n time.Time) {
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	for i := range policies.Items {
		p := &policies.Items[i]
		spec, err := policy.Parse(p)
		if invalid, ok := errors.AsType[*policy.InvalidError](err); ok {
			if err := c.markInvalid(ctx, p, invalid); err != nil {
				errs = append(errs, fmt.Errorf("policy %s/%s: %w", p.Namespace, p.Name, err))
			}
			continue
		}
		valid = append(valid, runnable{p, spec})
		c.metrics().InitSchedule(p.Namespace, p.Name)
		n, err := c.schedulePolicy(ctx, p, spec)
		if err != nil {
			c.countError(p, reasonSnapshotFailed)
			errs = append(errs, fmt.Errorf("policy %s/%s: %w", p.Namespace, p.Name, err))
		}
		if err := c.taker().OnDemand(ctx, p, spec); err != nil {
			c.countError(p, reasonSnapshotFailed)
			errs = append(errs, fmt.Errorf("on-demand snapshot %s/%s: %w", p.Namespace, p.Name, err))
		}
		earliest(n)
	}
	if err := c.reporter().Report(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, r := range valid {
		if err := c.pruner().Prune(ctx, r.p, r.spec.Retention); err != nil {
			c.countError(r.p, reasonRetentionFailed)
			errs = append(errs, fmt.Errorf("retention %s/%s: %w", r.p.Namespace, r.p.Name, err))
		}
		n, err := c.tester().Run(ctx, r.p, r.spec.RestoreTest)
		if err != nil {
			c.countError(r.p, reasonRestoreTestFailed)
			errs = append(errs, fmt.Errorf("restore test %s/%s: %w", r.p.Namespace, r.p.Name, err))
		}
		earliest(n)
	}
	return next, errors.Join(errs...)
}

// schedulePolicy marks the policy Ready, runs its due slot, if any, and
// returns its next slot.
func (c *Controller) schedulePolicy(ctx context.Context, p *v1alpha1.SnapshotPolicy, spec policy.Spec) (time.Time, error) {
	log := c.Log.With("namespace", p.Namespace, "policy", p.Name)
	orig := p.DeepCopy()
	c.markReady(p)
	last := p.CreationTimestamp.Time
	if p.Status.LastRun != nil {
		last = p.Status.LastRun.Time
	}
	now := c.Clock.Now()
	run := spec.Schedule.Due(last, now)
	var runErr error
	if !run.Slot.IsZero() {
		if run.MissedTotal > 0 {
			if err := c.publishMissed(ctx, p, run); err != nil {
				return run.Next, err
			}
			log.Warn("missed schedule slots; taking one catch-up snapshot", "missed", run.MissedTotal, "slot", run.Slot)
		}
		result, newest, findings, err := c.taker().Slot(ctx, p, spec, run.Slot)
		c.taker().SetEncrypted(p, findings)
		if err != nil {
			runErr = err
		} else {
			p.Status.LastRun = &metav1.Time{Time: run.Slot}
			p.Status.LastResult = result
			if newest != "" {
				p.Status.LastSnapshot = newest
			}
		}
	}
	p.Status.NextRun = &metav1.Time{Time: run.Next}
	if err := c.patchStatus(ctx, orig, p); err != nil {
		return run.Next, errors.Join(runErr, err)
	}
	return run.Next, runErr
}

func (c *Controller) patchStatus(ctx context.Context, orig, p *v1alpha1.SnapshotPolicy) error {
	if err := c.Client.Status().Patch(ctx, p, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

func (c *Controller) publishMissed(ctx context.Context, p *v1alpha1.SnapshotPolicy, run schedule.Run) error {
	id := fmt.Sprintf("snapshot-missed-%s.%s-%d", p.Namespace, p.Name, run.Slot.Unix())
	ev, err := c.Events.NewEvent(events.TypeSnapshotMissed, id, events.SnapshotMissed{
		Namespace: p.Namespace, Policy: p.Name, Slots: run.Missed, CatchUp: run.Slot,
	})
	if err != nil {
		return err
	}
	if err := c.Events.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish missed: %w", err)
	}
	c.metrics().Missed.WithLabelValues(p.Namespace, p.Name).Add(float64(run.MissedTotal))
	return nil
}
