package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/kubewatch"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
)

// Recorder records a Kubernetes Event on an object;
// k8s.io/client-go/tools/record.EventRecorder is one.
type Recorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Executor carries out the Restores of a namespace (or of all). Run it on
// the leader only: two executors on one Restore would race (their status
// writes would conflict, so the object stays consistent, but each would
// repeat actions the other already took).
type Executor struct {
	// Client reads and writes Kubernetes objects; a client.WithWatch also
	// lets Run react to a new Restore at once.
	Client client.Client
	// Events publishes the restore events.
	Events events.Publisher
	// Clock is the time source.
	Clock clock.Clock
	// Log is the logger.
	Log *slog.Logger
	// Namespace limits the executor to one namespace; "" is all.
	Namespace string
	// Poll is the wait between steps while a Restore runs (default 2s).
	Poll time.Duration
	// Resync bounds the wait when no Restore runs (default 30s).
	Resync time.Duration
	// Metrics, when set, counts the Restores that ended.
	Metrics *metrics.Metrics
	// SafetySnapshotTTL is how long a safety snapshot stays pinned after
	// its Restore ended, unless the Restore's spec.safetySnapshotTTL says
	// otherwise (default DefaultSafetySnapshotTTL).
	SafetySnapshotTTL time.Duration
	// Recommendations, when set, gives the incidents' current restore
	// recommendations, for a Restore that names an incident and no
	// snapshot.
	Recommendations Recommendations
	// Recorder, when set, records a Kubernetes Event on the Restore at
	// each phase it enters and at each failure (so `kubectl describe
	// restore` and `stateguardctl restore logs` show them).
	Recorder Recorder
}

// failure ends a Restore: Failed when nothing had changed yet, else
// RollingBack then RolledBack.
type failure struct {
	reason  string
	message string
}

func (f *failure) Error() string { return f.reason + ": " + f.message }

func fail(reason, format string, args ...any) error {
	return &failure{reason: reason, message: fmt.Sprintf(format, args...)}
}

// Run reconciles until ctx ends.
func (e *Executor) Run(ctx context.Context) error {
	poll, resync := e.Poll, e.Resync
	if poll <= 0 {
		poll = 2 * time.Second
	}
	if resync <= 0 {
		resync = 30 * time.Second
	}
	trigger := make(chan struct{}, 1)
	if w, ok := e.Client.(client.WithWatch); ok {
		go e.watch(ctx, w, trigger)
	}
	for {
		active, err := e.Reconcile(ctx)
		if err != nil && ctx.Err() == nil {
			e.Log.Warn("restore pass incomplete; retrying", "error", err)
		}
		wait := resync
		if active || err != nil {
			wait = poll
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.Clock.After(wait):
		case <-trigger:
		}
	}
}

func (e *Executor) watch(ctx context.Context, w client.WithWatch, trigger chan<- struct{}) {
	kubewatch.Trigger(ctx, e.Log, "restores", w, &v1alpha1.RestoreList{}, trigger, client.InNamespace(e.Namespace))
}

// Reconcile takes every running Restore as far as it can go now, one
// after the other, then lets the safety snapshots whose pin expired go
// (expireSafetySnapshots); active is true while a Restore is still
// running.
func (e *Executor) Reconcile(ctx context.Context) (active bool, err error) {
	var list v1alpha1.RestoreList
	if err := e.Client.List(ctx, &list, client.InNamespace(e.Namespace)); err != nil {
		return false, fmt.Errorf("list restores: %w", err)
	}
	var errs []error
	for i := range list.Items {
		r := &list.Items[i]
		if r.Status.Phase.Terminal() || r.DeletionTimestamp != nil {
			continue
		}
		if err := e.Advance(ctx, r, list.Items); err != nil {
			errs = append(errs, fmt.Errorf("restore %s/%s: %w", r.Namespace, r.Name, err))
		}
		if !r.Status.Phase.Terminal() {
			active = true
		}
	}
	if err := e.expireSafetySnapshots(ctx, list.Items); err != nil {
		errs = append(errs, err)
	}
	return active, errors.Join(errs...)
}

// maxSteps bounds the phases one Advance goes through.
const maxSteps = 16

// Advance takes r through its phases until one has to wait. all is every
// Restore of r's namespace (for Holder).
func (e *Executor) Advance(ctx context.Context, r *v1alpha1.Restore, all []v1alpha1.Restore) error {
	for range maxSteps {
		if r.Status.Phase.Terminal() {
			return nil
		}
		phase := r.Status.Phase
		next, err := e.step(ctx, r, all)
		if f, ok := errors.AsType[*failure](err); ok {
			return e.failed(ctx, r, f)
		}
		if err != nil {
			return err
		}
		if next == "" {
			return nil // waiting
		}
		if err := e.enter(ctx, r, next, r.Status.Message); err != nil {
			return err
		}
		e.Log.Info("restore phase", "namespace", r.Namespace, "restore", r.Name, "from", phase, "phase", next, "message", r.Status.Message)
	}
	return nil
}

// step runs r's current phase once. It returns the phase to enter, or ""
// to wait (with r.Status.Message saying for what), a *failure, or an error
// to retry.
func (e *Executor) step(ctx context.Context, r *v1alpha1.Restore, all []v1alpha1.Restore) (v1alpha1.RestorePhase, error) {
	now := e.Clock.Now()
	if r.Status.VolumeSnapshot == "" && r.Status.Phase != "" && r.Status.Phase != v1alpha1.RestorePending {
		// Started before status.volumeSnapshot existed: the spec's.
		r.Status.VolumeSnapshot = r.Spec.VolumeSnapshot
	}
	if r.Status.Phase != v1alpha1.RestoreRollingBack {
		start := r.CreationTimestamp.Time
		if r.Status.StartTime != nil {
			start = r.Status.StartTime.Time
		}
		over, err := Overdue(start, r.Spec.Deadline, now)
		if err != nil {
			return "", fail("InvalidSpec", "%v", err)
		}
		if over {
			return "", fail("DeadlineExceeded", "the restore did not finish within its deadline (%s) while %s: %s", deadlineOf(r), r.Status.Phase, r.Status.Message)
		}
	}
	switch r.Status.Phase {
	case "", v1alpha1.RestorePending:
		return e.pending(ctx, r, all)
	case v1alpha1.RestoreSafetySnapshot:
		return e.safetySnapshot(ctx, r)
	case v1alpha1.RestoreScalingDown:
		return e.scalingDown(ctx, r)
	case v1alpha1.RestoreRestoring:
		return e.restoring(ctx, r)
	case v1alpha1.RestoreScalingUp:
		return e.scalingUp(ctx, r)
	case v1alpha1.RestoreVerifying:
		return e.verifying(ctx, r)
	case v1alpha1.RestoreRollingBack:
		return e.rollingBack(ctx, r)
	}
	return "", fail("UnknownPhase", "phase %q is not one of the executor's", r.Status.Phase)
}

func deadlineOf(r *v1alpha1.Restore) string {
	if r.Spec.Deadline == "" {
		return DefaultDeadline.String()
	}
	return string(r.Spec.Deadline)
}

// enter moves r to phase: it publishes restore.progressed (its id derives
// from the Restore's uid and the phase, so a retry after a lost status write
// is dropped by JetStream), then writes the status with r's resourceVersion.
func (e *Executor) enter(ctx context.Context, r *v1alpha1.Restore, phase v1alpha1.RestorePhase, msg string) error {
	now := e.Clock.Now().UTC()
	if phase != v1alpha1.RestoreCompleted && phase != v1alpha1.RestoreRolledBack && phase != v1alpha1.RestoreFailed {
		if err := e.publish(ctx, r, events.TypeRestoreProgressed, "progressed-"+string(phase), events.RestoreProgressed{
			Namespace: r.Namespace, PVC: r.Status.PVC, Restore: r.Name, RequestID: r.Spec.RequestID, IncidentID: r.Spec.Incident,
			Snapshot: r.Status.VolumeSnapshot, Phase: string(phase), Message: msg, At: now,
		}); err != nil {
			return err
		}
	}
	r.Status.Phase = phase
	r.Status.Message = msg
	r.Status.Phases = append(r.Status.Phases, v1alpha1.PhaseTime{Phase: phase, At: metav1.NewTime(now), Message: msg})
	if err := e.writeStatus(ctx, r); err != nil {
		return err
	}
	e.record(r, PhaseEventType(phase), string(phase), msg)
	return nil
}

// PhaseEventType is the type of the Kubernetes Event recorded when a
// Restore enters phase: Warning for the phases of a failure, Normal for
// the others.
func PhaseEventType(phase v1alpha1.RestorePhase) string {
	switch phase {
	case v1alpha1.RestoreRollingBack, v1alpha1.RestoreRolledBack, v1alpha1.RestoreFailed:
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}

// record records a Kubernetes Event on r, when there is a Recorder.
func (e *Executor) record(r *v1alpha1.Restore, typ, reason, msg string) {
	if e.Recorder != nil {
		e.Recorder.Eventf(r, typ, reason, "%s", msg)
	}
}

// writeStatus writes r's status; the resourceVersion it carries makes a
// concurrent change a conflict (the next pass reads again).
func (e *Executor) writeStatus(ctx context.Context, r *v1alpha1.Restore) error {
	if err := e.Client.Status().Update(ctx, r); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

// wait records what r waits for (written only when it changed) and
// returns "" (stay in the phase).
func (e *Executor) wait(ctx context.Context, r *v1alpha1.Restore, format string, args ...any) (v1alpha1.RestorePhase, error) {
	msg := fmt.Sprintf(format, args...)
	if r.Status.Message == msg {
		return "", nil
	}
	r.Status.Message = msg
	return "", e.writeStatus(ctx, r)
}

// failed ends r after f: straight to Failed when nothing had changed,
// else to RollingBack (the next steps put the old volume and the
// workloads back).
func (e *Executor) failed(ctx context.Context, r *v1alpha1.Restore, f *failure) error {
	e.Log.Warn("restore failed", "namespace", r.Namespace, "restore", r.Name, "phase", r.Status.Phase, "reason", f.reason, "message", f.message)
	e.record(r, corev1.EventTypeWarning, f.reason, fmt.Sprintf("%s failed: %s", phaseOrPending(r.Status.Phase), f.message))
	r.Status.FailedPhase = phaseOrPending(r.Status.Phase)
	r.Status.FailureReason = f.reason
	if r.Status.Phase == v1alpha1.RestoreRollingBack {
		// A rollback does not fail over into another: it records why it
		// is stuck and tries again.
		r.Status.Message = "rolling back: " + f.message
		return e.writeStatus(ctx, r)
	}
	if !Changed(r.Status.Phase) {
		return e.finish(ctx, r, v1alpha1.RestoreFailed, f.reason, f.message+" (nothing was changed)")
	}
	return e.enter(ctx, r, v1alpha1.RestoreRollingBack, f.message+"; rolling back")
}

func phaseOrPending(p v1alpha1.RestorePhase) v1alpha1.RestorePhase {
	if p == "" {
		return v1alpha1.RestorePending
	}
	return p
}

// finish ends r in phase (Completed, RolledBack or Failed) and publishes
// its last event.
func (e *Executor) finish(ctx context.Context, r *v1alpha1.Restore, phase v1alpha1.RestorePhase, reason, msg string) error {
	now := e.Clock.Now().UTC()
	var err error
	if phase == v1alpha1.RestoreCompleted {
		done := events.RestoreCompleted{
			RestoreID: r.Name, Namespace: r.Namespace, PVC: r.Status.PVC, VolumeSnapshot: r.Status.VolumeSnapshot,
			PV: r.Status.NewPV, Incident: r.Spec.Incident, CompletedAt: now, Restore: r.Name, RequestID: r.Spec.RequestID,
			SafetySnapshot: r.Status.SafetySnapshot, OldPV: r.Status.OldPV,
		}
		if err := e.describeSource(ctx, r, &done); err != nil {
			return err
		}
		err = e.publish(ctx, r, events.TypeRestoreCompleted, "completed", done)
	} else {
		err = e.publish(ctx, r, events.TypeRestoreFailed, "failed", events.RestoreFailed{
			Namespace: r.Namespace, PVC: r.Status.PVC, Restore: r.Name, RequestID: r.Spec.RequestID, IncidentID: r.Spec.Incident,
			Snapshot: r.Status.VolumeSnapshot, Phase: string(r.Status.FailedPhase), Reason: msg, RolledBack: phase == v1alpha1.RestoreRolledBack,
			SafetySnapshot: r.Status.SafetySnapshot, OldPV: r.Status.OldPV, NewPV: r.Status.NewPV, FailedAt: now,
		})
	}
	if err != nil {
		return err
	}
	status := metav1.ConditionFalse
	if phase == v1alpha1.RestoreCompleted {
		status = metav1.ConditionTrue
	}
	apimeta.SetStatusCondition(&r.Status.Conditions, metav1.Condition{
		Type: "Succeeded", Status: status, Reason: reason, Message: msg, ObservedGeneration: r.Generation,
	})
	r.Status.CompletionTime = &metav1.Time{Time: now}
	e.Log.Info("restore ended", "namespace", r.Namespace, "restore", r.Name, "phase", phase, "reason", reason, "message", msg)
	if err := e.enter(ctx, r, phase, msg); err != nil {
		return err
	}
	if e.Metrics != nil {
		e.Metrics.Restores.WithLabelValues(r.Namespace, string(phase), reason).Inc()
	}
	return nil
}

// describeSource adds the restored snapshot's time and claim to done
// (RestoredFrom). A snapshot deleted since the restore read it leaves them
// out: the event says what is known, and the restore did complete.
func (e *Executor) describeSource(ctx context.Context, r *v1alpha1.Restore, done *events.RestoreCompleted) error {
	var vs snapv1.VolumeSnapshot
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Status.VolumeSnapshot}, &vs); err != nil {
		if apierrors.IsNotFound(err) {
			e.Log.Warn("restore.completed without the snapshot's time: the snapshot is gone", "namespace", r.Namespace, "restore", r.Name, "volume_snapshot", r.Status.VolumeSnapshot)
			return nil
		}
		return fmt.Errorf("get volume snapshot: %w", err)
	}
	pvc, at := RestoredFrom(&vs, r.Status.PVC)
	done.SnapshotPVC, done.SnapshotTime = pvc, &at
	return nil
}

// publish publishes one restore event; its id is the Restore's uid and
// what, so a repeat (after a crash) is de-duplicated.
func (e *Executor) publish(ctx context.Context, r *v1alpha1.Restore, typ, what string, payload any) error {
	ev, err := e.Events.NewEvent(typ, fmt.Sprintf("restore-%s-%s-%s", r.Namespace, r.UID, what), payload)
	if err != nil {
		return err
	}
	if err := e.Events.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish %s: %w", typ, err)
	}
	return nil
}
