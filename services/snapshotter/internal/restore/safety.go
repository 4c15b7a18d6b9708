package restore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// DefaultSafetySnapshotTTL is how long a safety snapshot stays pinned
// after its Restore ended, when neither the Restore nor the snapshotter's
// flag says otherwise: a week to notice that the restored data is not
// what was wanted.
const DefaultSafetySnapshotTTL = 7 * 24 * time.Hour

// AnnotationExpiresAt is set on a safety snapshot once its Restore ended:
// the time (RFC 3339) its Restore's pin ends. It stays on the snapshot, so
// the pin ends on time even when the Restore is deleted.
const AnnotationExpiresAt = "stateguard.io/expires-at"

// safetyPinReason starts the pinned-reason of a safety snapshot's own pin.
const safetyPinReason = "safety snapshot of claim "

// SafetySnapshot is what the expiry rule needs to know of a safety
// snapshot.
type SafetySnapshot struct {
	Name string
	// RestoreRunning: its Restore exists and has not ended.
	RestoreRunning bool
	// ExpiresAt is the end of the Restore's pin (zero: not known yet).
	ExpiresAt time.Time
	// PinnedBy is why something other than its Restore pins it (a pin
	// request — the correlator pins a known-good snapshot —, or a pin by
	// hand); empty when only its Restore does, or nothing.
	PinnedBy string
	// UsedBy are the running Restores that restore from it.
	UsedBy []string
}

// SafetySnapshotFate is the rule of a safety snapshot's end: it is kept
// while its Restore runs and until its pin expires (the Restore's end plus
// its TTL), and after that as long as something else pins it or a running
// Restore restores from it; then it may be deleted. why says which.
func SafetySnapshotFate(s SafetySnapshot, now time.Time) (del bool, why string) {
	switch {
	case s.RestoreRunning:
		return false, "its Restore runs"
	case s.ExpiresAt.IsZero():
		return false, "its expiry is not recorded yet"
	case now.Before(s.ExpiresAt):
		return false, "pinned until " + s.ExpiresAt.UTC().Format(time.RFC3339)
	case s.PinnedBy != "":
		return false, "pinned: " + s.PinnedBy
	case len(s.UsedBy) > 0:
		return false, "restored from by Restore " + strings.Join(s.UsedBy, ", ")
	}
	return true, "its pin expired at " + s.ExpiresAt.UTC().Format(time.RFC3339)
}

// pinnedBy is why something other than its Restore pins vs ("" if
// nothing does): a pin request was applied (the pins package records its
// time), or the pin's reason is not the Restore's.
func pinnedBy(vs *snapv1.VolumeSnapshot) string {
	if vs.Labels[v1alpha1.LabelPinned] != "true" {
		return ""
	}
	reason := vs.Annotations[v1alpha1.AnnotationPinnedReason]
	if vs.Annotations[v1alpha1.AnnotationPinUpdatedAt] != "" || !strings.HasPrefix(reason, safetyPinReason) {
		if reason == "" {
			reason = "label " + v1alpha1.LabelPinned + "=true"
		}
		return reason
	}
	return ""
}

// ttlOf is r's safety snapshot TTL: its spec's, else def.
func ttlOf(r *v1alpha1.Restore, def time.Duration) (time.Duration, error) {
	if def <= 0 {
		def = DefaultSafetySnapshotTTL
	}
	d, err := durationOr(r.Spec.SafetySnapshotTTL, def)
	if err != nil {
		return 0, fmt.Errorf("spec.safetySnapshotTTL: %w", err)
	}
	return d, nil
}

// expireSafetySnapshots records when each safety snapshot's pin ends and
// deletes those SafetySnapshotFate lets go. restores are every Restore of
// the executor's namespaces.
func (e *Executor) expireSafetySnapshots(ctx context.Context, restores []v1alpha1.Restore) error {
	// The snapshotter's snapshots that name a Restore.
	sel, err := labels.Parse(v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedBy + "," + v1alpha1.LabelRestore)
	if err != nil {
		return err
	}
	var list snapv1.VolumeSnapshotList
	if err := e.Client.List(ctx, &list, client.InNamespace(e.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return fmt.Errorf("list safety snapshots: %w", err)
	}
	now := e.Clock.Now()
	var errs []error
	for i := range list.Items {
		vs := &list.Items[i]
		if vs.DeletionTimestamp != nil {
			continue
		}
		if err := e.expireSafetySnapshot(ctx, vs, restores, now); err != nil {
			errs = append(errs, fmt.Errorf("safety snapshot %s/%s: %w", vs.Namespace, vs.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (e *Executor) expireSafetySnapshot(ctx context.Context, vs *snapv1.VolumeSnapshot, restores []v1alpha1.Restore, now time.Time) error {
	s := SafetySnapshot{Name: vs.Name, PinnedBy: pinnedBy(vs)}
	var owner *v1alpha1.Restore
	for i := range restores {
		r := &restores[i]
		if r.Namespace != vs.Namespace || r.DeletionTimestamp != nil {
			continue
		}
		if labelValue(r.Name) == vs.Labels[v1alpha1.LabelRestore] {
			owner = r
			s.RestoreRunning = !r.Status.Phase.Terminal()
		} else if !r.Status.Phase.Terminal() && (r.Status.VolumeSnapshot == vs.Name || r.Spec.VolumeSnapshot == vs.Name) {
			s.UsedBy = append(s.UsedBy, r.Name)
		}
	}
	if at, err := time.Parse(time.RFC3339, vs.Annotations[AnnotationExpiresAt]); err == nil {
		s.ExpiresAt = at
	}
	if vs.Labels[v1alpha1.LabelRestore] == "" {
		return nil // not a safety snapshot
	}
	if !s.ExpiresAt.IsZero() && owner != nil && owner.Status.SafetySnapshotExpiresAt == nil {
		// The annotation was written but the Restore's status write was
		// lost (a conflict with the Restore's last phase write, say):
		// the status follows the annotation.
		if err := e.recordExpiryStatus(ctx, vs, owner, s.ExpiresAt); err != nil {
			return err
		}
	}
	if s.ExpiresAt.IsZero() && !s.RestoreRunning {
		// Its Restore ended (or is gone): the pin ends ttl after that.
		base, ttl := now, DefaultSafetySnapshotTTL
		if e.SafetySnapshotTTL > 0 {
			ttl = e.SafetySnapshotTTL
		}
		if owner != nil {
			d, err := ttlOf(owner, e.SafetySnapshotTTL)
			if err != nil {
				return err
			}
			ttl = d
			if owner.Status.CompletionTime != nil {
				base = owner.Status.CompletionTime.Time
			}
		}
		return e.recordExpiry(ctx, vs, owner, base.Add(ttl).UTC().Truncate(time.Second))
	}
	del, why := SafetySnapshotFate(s, now)
	if !del {
		return nil
	}
	uid, rv := vs.UID, vs.ResourceVersion
	// The preconditions make a pin applied since the list a conflict: the
	// next pass decides again.
	if err := e.Client.Delete(ctx, vs, client.Preconditions{UID: &uid, ResourceVersion: &rv}); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return fmt.Errorf("delete: %w", err)
	}
	e.Log.Info("safety snapshot deleted", "namespace", vs.Namespace, "volume_snapshot", vs.Name, "reason", why)
	if e.Metrics != nil {
		e.Metrics.SafetySnapshotDeletions.WithLabelValues(vs.Namespace).Inc()
	}
	if owner != nil {
		e.record(owner, corev1.EventTypeNormal, "SafetySnapshotDeleted", fmt.Sprintf("safety snapshot %s deleted: %s", vs.Name, why))
	}
	return nil
}

// recordExpiry writes the end of the pin on the safety snapshot and in its
// Restore's status.
func (e *Executor) recordExpiry(ctx context.Context, vs *snapv1.VolumeSnapshot, owner *v1alpha1.Restore, at time.Time) error {
	orig := vs.DeepCopy()
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	vs.Annotations[AnnotationExpiresAt] = at.Format(time.RFC3339)
	if err := e.Client.Patch(ctx, vs, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("record expiry: %w", err)
	}
	return e.recordExpiryStatus(ctx, vs, owner, at)
}

// recordExpiryStatus writes the end of the pin in the Restore's status,
// once.
func (e *Executor) recordExpiryStatus(ctx context.Context, vs *snapv1.VolumeSnapshot, owner *v1alpha1.Restore, at time.Time) error {
	if owner == nil || owner.Status.SafetySnapshotExpiresAt != nil {
		return nil
	}
	owner.Status.SafetySnapshotExpiresAt = &metav1.Time{Time: at}
	if err := e.writeStatus(ctx, owner); err != nil {
		return err
	}
	e.record(owner, corev1.EventTypeNormal, "SafetySnapshotPinned", fmt.Sprintf("safety snapshot %s stays pinned until %s; then it is deleted unless something else pins it", vs.Name, at.Format(time.RFC3339)))
	return nil
}
