package restore

import (
	"fmt"
	"maps"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/managed"
)

// Defaults of a Restore's spec.
const (
	DefaultDeadline            = 30 * time.Minute
	DefaultVerificationTimeout = 10 * time.Minute
)

// Holder returns the Restore that may work on claim among restores (every
// Restore of the namespace), or nil when none is running on it. A Restore
// past Pending holds its claim until it ends; among Pending ones the oldest
// (then the first by name) goes first. A Restore that is not the holder is
// refused, not queued: a second restore of a claim is a decision to make
// again once the first one ended.
func Holder(restores []v1alpha1.Restore, claim string) *v1alpha1.Restore {
	var holder *v1alpha1.Restore
	for i := range restores {
		r := &restores[i]
		if r.Status.PVC != claim || r.Status.Phase.Terminal() || r.DeletionTimestamp != nil {
			continue
		}
		switch {
		case holder == nil:
			holder = r
		case started(r) && !started(holder):
			holder = r
		case started(r) == started(holder) && older(r, holder):
			holder = r
		}
	}
	return holder
}

func started(r *v1alpha1.Restore) bool {
	return r.Status.Phase != "" && r.Status.Phase != v1alpha1.RestorePending
}

func older(a, b *v1alpha1.Restore) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// Changed reports whether a Restore in phase p may have changed anything
// (scaled a workload, replaced the claim): a failure from there rolls back;
// before it, the Restore simply ends Failed.
func Changed(p v1alpha1.RestorePhase) bool {
	switch p {
	case "", v1alpha1.RestorePending, v1alpha1.RestoreSafetySnapshot:
		return false
	}
	return true
}

// Overdue reports whether a Restore started at start with the given
// deadline (a Go duration, empty for the default) is past it at now.
func Overdue(start time.Time, deadline v1alpha1.Duration, now time.Time) (bool, error) {
	d, err := durationOr(deadline, DefaultDeadline)
	if err != nil {
		return false, fmt.Errorf("spec.deadline: %w", err)
	}
	return !start.IsZero() && now.Sub(start) > d, nil
}

func durationOr(d v1alpha1.Duration, def time.Duration) (time.Duration, error) {
	if d == "" {
		return def, nil
	}
	return time.ParseDuration(string(d))
}

// bindingAnnotations are set by Kubernetes on a bound claim; a new claim
// must not carry them over (they would claim a binding that is not there).
var bindingAnnotations = []string{
	"pv.kubernetes.io/bind-completed",
	"pv.kubernetes.io/bound-by-controller",
	"volume.beta.kubernetes.io/storage-provisioner",
	"volume.kubernetes.io/storage-provisioner",
	"volume.kubernetes.io/selected-node",
	"kubectl.kubernetes.io/last-applied-configuration",
}

// TemplateOf keeps what the replacement of pvc needs: its labels,
// annotations (without the binding ones), storage class, access modes,
// volume mode and size — at least restoreSize, the snapshot's size.
func TemplateOf(pvc *corev1.PersistentVolumeClaim, restoreSize *resource.Quantity) *v1alpha1.ClaimTemplate {
	size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if restoreSize != nil && restoreSize.Cmp(size) > 0 {
		size = *restoreSize
	}
	annotations := maps.Clone(pvc.Annotations)
	for _, a := range bindingAnnotations {
		delete(annotations, a)
	}
	t := &v1alpha1.ClaimTemplate{
		UID:              string(pvc.UID),
		Labels:           maps.Clone(pvc.Labels),
		Annotations:      annotations,
		StorageClassName: pvc.Spec.StorageClassName,
		Storage:          size.String(),
	}
	for _, m := range pvc.Spec.AccessModes {
		t.AccessModes = append(t.AccessModes, string(m))
	}
	if pvc.Spec.VolumeMode != nil {
		m := string(*pvc.Spec.VolumeMode)
		t.VolumeMode = &m
	}
	return t
}

// ClaimFrom is the claim named name that replaces the original: the same
// labels, annotations, class, modes and size, marked with the Restore, and
// filled from the snapshot (restore) or bound to the old volume (rollback,
// snapshot empty and volume set).
func ClaimFrom(t *v1alpha1.ClaimTemplate, namespace, name, restore, snapshot, volume string) (*corev1.PersistentVolumeClaim, error) {
	size, err := resource.ParseQuantity(t.Storage)
	if err != nil {
		return nil, fmt.Errorf("claim size %q: %w", t.Storage, err)
	}
	pvc := &corev1.PersistentVolumeClaim{}
	pvc.Namespace, pvc.Name = namespace, name
	pvc.Labels = maps.Clone(t.Labels)
	if pvc.Labels == nil {
		pvc.Labels = map[string]string{}
	}
	pvc.Labels[v1alpha1.LabelRestore] = restore
	pvc.Annotations = maps.Clone(t.Annotations)
	if pvc.Annotations == nil {
		pvc.Annotations = map[string]string{}
	}
	pvc.Spec.StorageClassName = t.StorageClassName
	for _, m := range t.AccessModes {
		pvc.Spec.AccessModes = append(pvc.Spec.AccessModes, corev1.PersistentVolumeAccessMode(m))
	}
	if t.VolumeMode != nil {
		m := corev1.PersistentVolumeMode(*t.VolumeMode)
		pvc.Spec.VolumeMode = &m
	}
	pvc.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: size}
	if snapshot != "" {
		group := "snapshot.storage.k8s.io"
		pvc.Spec.DataSource = &corev1.TypedLocalObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: snapshot}
		pvc.Annotations[v1alpha1.AnnotationRestoredFrom] = snapshot
	} else {
		delete(pvc.Annotations, v1alpha1.AnnotationRestoredFrom)
	}
	pvc.Spec.VolumeName = volume
	return pvc, nil
}

// SafetySnapshotName is the name of a Restore's safety snapshot.
func SafetySnapshotName(restore string) string { return child(restore, "safety") }

// VerificationJobName is the name of a Restore's verification Job.
func VerificationJobName(restore string) string { return child(restore, "verify") }

// child is restore-suffix within the 63 characters of a label value (the
// Job's pods carry its name as a label).
func child(restore, suffix string) string {
	if n := 63 - len(suffix) - 1; len(restore) > n {
		restore = strings.TrimRight(restore[:n], "-.")
	}
	return restore + "-" + suffix
}

// RestoredFrom is what restore.completed says of the snapshot vs restored
// into claim: its time, as its snapshot.completed's creation_time (a
// consumer rebuilds the restored data's lineage from it when it no longer
// remembers the snapshot), and the claim it was taken of when that is not
// claim ("" when it is, or when vs names no claim).
func RestoredFrom(vs *snapv1.VolumeSnapshot, claim string) (snapshotPVC string, at time.Time) {
	if c := managed.Claim(vs); c != claim {
		snapshotPVC = c
	}
	return snapshotPVC, managed.CreationTime(vs)
}
