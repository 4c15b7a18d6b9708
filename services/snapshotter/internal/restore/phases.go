package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/workload"
)

// readySnapshot reads the Restore's source snapshot. gone is a failure
// (the snapshot was deleted, or failed); a snapshot not ready yet returns
// ready false.
func (e *Executor) readySnapshot(ctx context.Context, r *v1alpha1.Restore) (*snapv1.VolumeSnapshot, bool, error) {
	var vs snapv1.VolumeSnapshot
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Status.VolumeSnapshot}, &vs); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, fail("SnapshotNotFound", "volume snapshot %s/%s does not exist (deleted?)", r.Namespace, r.Status.VolumeSnapshot)
		}
		return nil, false, fmt.Errorf("get volume snapshot: %w", err)
	}
	if vs.DeletionTimestamp != nil {
		return nil, false, fail("SnapshotNotFound", "volume snapshot %s/%s is being deleted", r.Namespace, vs.Name)
	}
	if vs.Status != nil && vs.Status.Error != nil && vs.Status.Error.Message != nil {
		return nil, false, fail("SnapshotFailed", "volume snapshot %s/%s failed: %s", r.Namespace, vs.Name, *vs.Status.Error.Message)
	}
	return &vs, vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse, nil
}

// resolve sets the snapshot r restores: the spec's, or the one the
// incident's current recommendation names. It runs at every pass while r
// is Pending, so a revised recommendation is followed until r starts; ok
// is false while r waits for a recommendation.
func (e *Executor) resolve(ctx context.Context, r *v1alpha1.Restore) (ok bool, err error) {
	if r.Spec.VolumeSnapshot != "" {
		r.Status.VolumeSnapshot = r.Spec.VolumeSnapshot
		return true, nil
	}
	if e.Recommendations == nil {
		return false, fail("NoRecommendation", "spec.volumeSnapshot is empty and this snapshotter does not follow restore recommendations: name the snapshot")
	}
	recs, err := e.Recommendations.Recommended(ctx, r.Namespace, r.Spec.Incident)
	if err != nil {
		return false, fmt.Errorf("recommendations of incident %s: %w", r.Spec.Incident, err)
	}
	rec, err := Follow(recs, r.Spec.Incident, r.Spec.PVC)
	if err != nil {
		return false, err
	}
	if rec == nil {
		what := "incident " + r.Spec.Incident
		if r.Spec.PVC != "" {
			what += " and claim " + r.Spec.PVC
		}
		_, err := e.wait(ctx, r, "waiting for a restore recommendation of %s (restore.recommended)", what)
		return false, err
	}
	ref := &v1alpha1.RecommendationRef{Revision: rec.Revision, EventID: rec.EventID, VolumeSnapshot: rec.VolumeSnapshot, PVC: rec.PVC}
	if r.Status.Recommendation != nil && *r.Status.Recommendation != *ref {
		e.record(r, corev1.EventTypeNormal, "RecommendationRevised", fmt.Sprintf("incident %s's recommendation for claim %s is now revision %d: volume snapshot %s (was revision %d: %s)",
			r.Spec.Incident, rec.PVC, rec.Revision, rec.VolumeSnapshot, r.Status.Recommendation.Revision, r.Status.Recommendation.VolumeSnapshot))
	}
	r.Status.Recommendation = ref
	r.Status.VolumeSnapshot = rec.VolumeSnapshot
	return true, nil
}

// pending checks what the restore needs and records it: the claim (and
// that no other Restore works on it), its volume, its workloads and their
// replicas. Nothing changes in the cluster.
func (e *Executor) pending(ctx context.Context, r *v1alpha1.Restore, all []v1alpha1.Restore) (v1alpha1.RestorePhase, error) {
	if r.Status.Phase == "" {
		r.Status.Phase = v1alpha1.RestorePending
		r.Status.Phases = []v1alpha1.PhaseTime{{Phase: v1alpha1.RestorePending, At: metav1.NewTime(e.Clock.Now().UTC())}}
	}
	if ok, err := e.resolve(ctx, r); err != nil || !ok {
		return "", err
	}
	vs, ready, err := e.readySnapshot(ctx, r)
	if err != nil {
		return "", err
	}
	claim := r.Spec.PVC
	if claim == "" && r.Status.Recommendation != nil {
		claim = r.Status.Recommendation.PVC
	}
	if claim == "" && vs.Spec.Source.PersistentVolumeClaimName != nil {
		claim = *vs.Spec.Source.PersistentVolumeClaimName
	}
	if claim == "" {
		return "", fail("NoClaim", "volume snapshot %s names no source claim: set spec.pvc", vs.Name)
	}
	if r.Status.PVC != claim {
		// Record the claim first: Holder decides among the Restores that
		// recorded theirs.
		r.Status.PVC = claim
		r.Status.Message = fmt.Sprintf("checking claim %s, its workloads and volume snapshot %s", claim, vs.Name)
		if err := e.writeStatus(ctx, r); err != nil {
			return "", err
		}
		e.record(r, corev1.EventTypeNormal, string(v1alpha1.RestorePending), r.Status.Message)
		return "", nil
	}
	for i := range all {
		if all[i].UID == r.UID {
			all[i] = *r
		}
	}
	if h := Holder(all, claim); h != nil && h.UID != r.UID {
		return "", fail("ClaimBusy", "claim %s is being restored by Restore %s (phase %s); wait until it ends, then create another Restore", claim, h.Name, h.Status.Phase)
	}
	if !ready {
		return e.wait(ctx, r, "waiting for volume snapshot %s to be ready to use", vs.Name)
	}
	var pvc corev1.PersistentVolumeClaim
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: claim}, &pvc); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fail("ClaimNotFound", "claim %s/%s does not exist; a Restore replaces an existing claim in place", r.Namespace, claim)
		}
		return "", fmt.Errorf("get claim: %w", err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", fail("ClaimNotBound", "claim %s/%s is %s, not Bound", r.Namespace, claim, pvc.Status.Phase)
	}
	if pvc.DeletionTimestamp != nil {
		return "", fail("ClaimDeleting", "claim %s/%s is being deleted", r.Namespace, claim)
	}
	var size *resource.Quantity
	if vs.Status != nil {
		size = vs.Status.RestoreSize
	}
	wls := r.Spec.Workloads
	if len(wls) == 0 {
		found, err := discover(ctx, e.Client, r.Namespace, claim)
		if err != nil {
			return "", err
		}
		wls = found
	}
	var stopped []v1alpha1.RestoreWorkload
	for _, w := range wls {
		obj, err := getWorkload(ctx, e.Client, r.Namespace, w)
		if err != nil {
			return "", err
		}
		stopped = append(stopped, v1alpha1.RestoreWorkload{WorkloadRef: w, Replicas: replicasOf(obj)})
	}
	now := e.Clock.Now().UTC()
	r.Status.Claim = TemplateOf(&pvc, size)
	r.Status.OldPV = pvc.Spec.VolumeName
	r.Status.Workloads = stopped
	r.Status.StartTime = &metav1.Time{Time: now}
	if err := e.publish(ctx, r, events.TypeRestoreStarted, "started", events.RestoreStarted{
		Namespace: r.Namespace, PVC: claim, Restore: r.Name, RequestID: r.Spec.RequestID, IncidentID: r.Spec.Incident,
		Snapshot: r.Status.VolumeSnapshot, Workloads: refs(r.Namespace, stopped), OldPV: r.Status.OldPV, StartedAt: now,
	}); err != nil {
		return "", err
	}
	if r.Spec.SafetySnapshot != nil && !*r.Spec.SafetySnapshot {
		r.Status.Message = fmt.Sprintf("no safety snapshot (spec.safetySnapshot: false); stopping %d workload(s)", len(stopped))
		return v1alpha1.RestoreScalingDown, nil
	}
	r.Status.Message = "taking safety snapshot " + SafetySnapshotName(r.Name) + " of claim " + claim
	return v1alpha1.RestoreSafetySnapshot, nil
}

// safetySnapshot snapshots the claim as it is now, pinned and labelled
// with the Restore, and waits until the snapshot is ready.
func (e *Executor) safetySnapshot(ctx context.Context, r *v1alpha1.Restore) (v1alpha1.RestorePhase, error) {
	name := SafetySnapshotName(r.Name)
	var vs snapv1.VolumeSnapshot
	err := e.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: name}, &vs)
	if apierrors.IsNotFound(err) {
		var src snapv1.VolumeSnapshot
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Status.VolumeSnapshot}, &src); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("get volume snapshot: %w", err)
		}
		claim := r.Status.PVC
		ran, err := ranOn(ctx, e.Client, r.Namespace, claim)
		if err != nil {
			return "", err
		}
		vs = snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: r.Namespace, Name: name,
				Labels: map[string]string{
					v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelPVC: labelValue(claim),
					v1alpha1.LabelRestore: labelValue(r.Name), v1alpha1.LabelPinned: "true",
				},
				Annotations: map[string]string{
					v1alpha1.AnnotationPinnedReason: fmt.Sprintf(safetyPinReason+"%s taken by Restore %s before restoring %s; pinned while the Restore runs and for its safety snapshot TTL after", claim, r.Name, r.Status.VolumeSnapshot),
					v1alpha1.AnnotationWorkloads:    ran,
				},
			},
			Spec: snapv1.VolumeSnapshotSpec{
				Source:                  snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim},
				VolumeSnapshotClassName: src.Spec.VolumeSnapshotClassName,
			},
		}
		if err := e.Client.Create(ctx, &vs); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create safety snapshot: %w", err)
		}
		return e.wait(ctx, r, "waiting for safety snapshot %s to be ready", name)
	}
	if err != nil {
		return "", fmt.Errorf("get safety snapshot: %w", err)
	}
	if vs.Status != nil && vs.Status.Error != nil && vs.Status.Error.Message != nil {
		return "", fail("SafetySnapshotFailed", "safety snapshot %s failed: %s", name, *vs.Status.Error.Message)
	}
	if vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse {
		return e.wait(ctx, r, "waiting for safety snapshot %s to be ready", name)
	}
	r.Status.SafetySnapshot = name
	r.Status.Message = fmt.Sprintf("safety snapshot %s ready; stopping %d workload(s)", name, len(r.Status.Workloads))
	return v1alpha1.RestoreScalingDown, nil
}

// ranOn is the workloads annotation of a safety snapshot of claim: the
// pods that mount it now, as a scheduled snapshot names them. The safety
// snapshot is cut before the scale-down, while they still write to the
// claim, and its snapshot.completed is a sample of the claim's lineage:
// without them the correlator would read it as "nothing runs" from the
// snapshot's time on (and the snapshot as no application's).
func ranOn(ctx context.Context, c client.Reader, namespace, claim string) (string, error) {
	pods, err := workload.Pods(ctx, c, namespace, claim)
	if err != nil {
		return "", err
	}
	wls, err := workload.Describe(ctx, c, pods)
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(wls)
	if err != nil {
		return "", fmt.Errorf("workloads of claim %s: %w", claim, err)
	}
	return string(raw), nil
}

// scalingDown scales every workload to 0 and waits until no pod mounts the
// claim.
func (e *Executor) scalingDown(ctx context.Context, r *v1alpha1.Restore) (v1alpha1.RestorePhase, error) {
	for _, w := range r.Status.Workloads {
		if err := scale(ctx, e.Client, r.Namespace, w.WorkloadRef, 0); err != nil {
			return "", err
		}
	}
	pods, err := mountingPods(ctx, e.Client, r.Namespace, r.Status.PVC)
	if err != nil {
		return "", err
	}
	if len(pods) > 0 {
		return e.wait(ctx, r, "waiting until no pod mounts claim %s (still: %s)", r.Status.PVC, strings.Join(pods, ", "))
	}
	r.Status.Message = fmt.Sprintf("no pod mounts claim %s; replacing it with one filled from %s", r.Status.PVC, r.Status.VolumeSnapshot)
	return v1alpha1.RestoreRestoring, nil
}

// retain sets a volume's reclaim policy to Retain, so that deleting its
// claim keeps it.
func (e *Executor) retain(ctx context.Context, name string) error {
	var pv corev1.PersistentVolume
	if err := e.Client.Get(ctx, client.ObjectKey{Name: name}, &pv); err != nil {
		if apierrors.IsNotFound(err) {
			return fail("VolumeNotFound", "persistent volume %s is gone", name)
		}
		return fmt.Errorf("get persistent volume %s: %w", name, err)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimRetain {
		return nil
	}
	orig := pv.DeepCopy()
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	if err := e.Client.Patch(ctx, &pv, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("retain persistent volume %s: %w", name, err)
	}
	return nil
}

// restoring keeps the old volume (Retain), deletes the old claim, creates
// the new one of the same name from the snapshot, and waits until it is
// bound. Which of these is done is read from the cluster: the old claim is
// the one with the recorded uid, the new one carries the Restore's label.
func (e *Executor) restoring(ctx context.Context, r *v1alpha1.Restore) (v1alpha1.RestorePhase, error) {
	if err := e.retain(ctx, r.Status.OldPV); err != nil {
		return "", err
	}
	var pvc corev1.PersistentVolumeClaim
	err := e.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Status.PVC}, &pvc)
	switch {
	case apierrors.IsNotFound(err):
		// The old claim is gone: create the new one, from a snapshot that
		// must still be there.
		if _, ready, err := e.readySnapshot(ctx, r); err != nil || !ready {
			if err == nil {
				err = fail("SnapshotNotReady", "volume snapshot %s is no longer ready to use", r.Status.VolumeSnapshot)
			}
			return "", err
		}
		nc, err := ClaimFrom(r.Status.Claim, r.Namespace, r.Status.PVC, labelValue(r.Name), r.Status.VolumeSnapshot, "")
		if err != nil {
			return "", fail("InvalidClaim", "%v", err)
		}
		if err := e.Client.Create(ctx, nc); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create restored claim: %w", err)
		}
		return e.wait(ctx, r, "waiting for claim %s to be bound to a volume restored from %s", r.Status.PVC, r.Status.VolumeSnapshot)
	case err != nil:
		return "", fmt.Errorf("get claim: %w", err)
	case string(pvc.UID) == r.Status.Claim.UID:
		// The old claim: delete it once the snapshot is certainly there.
		if _, ready, err := e.readySnapshot(ctx, r); err != nil || !ready {
			if err == nil {
				err = fail("SnapshotNotReady", "volume snapshot %s is no longer ready to use", r.Status.VolumeSnapshot)
			}
			return "", err
		}
		if pvc.DeletionTimestamp == nil {
			uid := pvc.UID
			if err := e.Client.Delete(ctx, &pvc, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
				return "", fmt.Errorf("delete old claim: %w", err)
			}
		}
		return e.wait(ctx, r, "waiting for the old claim %s to be gone (its volume %s is retained)", r.Status.PVC, r.Status.OldPV)
	case pvc.Labels[v1alpha1.LabelRestore] != labelValue(r.Name):
		return "", fail("ClaimReplaced", "claim %s was replaced by someone else (uid %s) during the restore", r.Status.PVC, pvc.UID)
	}
	// The new claim.
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		if _, _, err := e.readySnapshot(ctx, r); err != nil {
			return "", err
		}
		return e.wait(ctx, r, "waiting for claim %s to be bound to a volume restored from %s", r.Status.PVC, r.Status.VolumeSnapshot)
	}
	r.Status.NewPV = pvc.Spec.VolumeName
	if r.Spec.Verification == nil {
		r.Status.Message = fmt.Sprintf("claim %s bound to restored volume %s; no verification configured", r.Status.PVC, r.Status.NewPV)
	} else {
		r.Status.Message = fmt.Sprintf("claim %s bound to restored volume %s; verifying it with Job %s before the workloads start", r.Status.PVC, r.Status.NewPV, VerificationJobName(r.Name))
	}
	return v1alpha1.RestoreVerifying, nil
}

// scaleUp scales every workload back to its replicas and reports whether
// all rolled out, and which did not.
func (e *Executor) scaleUp(ctx context.Context, r *v1alpha1.Restore) ([]string, error) {
	var waiting []string
	for _, w := range r.Status.Workloads {
		if err := scale(ctx, e.Client, r.Namespace, w.WorkloadRef, w.Replicas); err != nil {
			return nil, err
		}
		obj, err := getWorkload(ctx, e.Client, r.Namespace, w.WorkloadRef)
		if err != nil {
			return nil, err
		}
		if !rolledOut(obj) {
			waiting = append(waiting, fmt.Sprintf("%s %s (%d replicas)", w.Kind, w.Name, w.Replicas))
		}
	}
	return waiting, nil
}

// scalingUp starts the workloads again, waits for their rollout and
// completes the restore.
func (e *Executor) scalingUp(ctx context.Context, r *v1alpha1.Restore) (v1alpha1.RestorePhase, error) {
	waiting, err := e.scaleUp(ctx, r)
	if err != nil {
		return "", err
	}
	if len(waiting) > 0 {
		return e.wait(ctx, r, "waiting for the rollout of %s", strings.Join(waiting, ", "))
	}
	verified := ""
	if r.Spec.Verification != nil {
		verified = " and verified by Job " + VerificationJobName(r.Name)
	}
	return "", e.finish(ctx, r, v1alpha1.RestoreCompleted, "Completed", fmt.Sprintf("claim %s restored from %s%s; its workloads run (new volume %s; old volume %s retained)", r.Status.PVC, r.Status.VolumeSnapshot, verified, r.Status.NewPV, r.Status.OldPV))
}

// verifying runs the verification Job on the restored claim, if any,
// while the workloads are still stopped, and starts them when it
// succeeds. Verifying before the workloads start is what makes it safe
// for a ReadWriteOnce (or ReadWriteOncePod) claim: the Job is the claim's
// only user, wherever the scheduler puts it, and it reads the data
// exactly as restored, before the application writes to it. A failed
// verification rolls back without the application ever having run on the
// restored data.
func (e *Executor) verifying(ctx context.Context, r *v1alpha1.Restore) (v1alpha1.RestorePhase, error) {
	if r.Spec.Verification == nil {
		r.Status.Message = fmt.Sprintf("no verification configured; starting %d workload(s)", len(r.Status.Workloads))
		return v1alpha1.RestoreScalingUp, nil
	}
	timeout, err := durationOr(r.Spec.Verification.Timeout, DefaultVerificationTimeout)
	if err != nil {
		return "", fail("InvalidSpec", "spec.verification.timeout: %v", err)
	}
	name := VerificationJobName(r.Name)
	var job batchv1.Job
	err = e.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: name}, &job)
	if apierrors.IsNotFound(err) {
		job := verificationJob(r, name, timeout)
		if err := e.Client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			if apierrors.IsInvalid(err) {
				return "", fail("InvalidVerification", "verification Job: %v", err)
			}
			return "", fmt.Errorf("create verification job: %w", err)
		}
		return e.wait(ctx, r, "verification Job %s started", name)
	}
	if err != nil {
		return "", fmt.Errorf("get verification job: %w", err)
	}
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			r.Status.Message = fmt.Sprintf("verification Job %s succeeded; starting %d workload(s)", name, len(r.Status.Workloads))
			return v1alpha1.RestoreScalingUp, nil
		case batchv1.JobFailed:
			return "", fail("VerificationFailed", "verification Job %s failed: %s %s", name, c.Reason, c.Message)
		}
	}
	if e.Clock.Since(job.CreationTimestamp.Time) > timeout+time.Minute {
		return "", fail("VerificationFailed", "verification Job %s did not finish within %s", name, timeout)
	}
	return e.wait(ctx, r, "waiting for verification Job %s", name)
}

// verificationJob is the Job of r's verification: its template, with the
// claim mounted at /data in every container. It runs while no workload
// mounts the claim (see verifying).
func verificationJob(r *v1alpha1.Restore, name string, timeout time.Duration) *batchv1.Job {
	spec := *r.Spec.Verification.Template.DeepCopy()
	secs := int64(timeout.Seconds())
	spec.ActiveDeadlineSeconds = &secs
	if spec.BackoffLimit == nil {
		zero := int32(0)
		spec.BackoffLimit = &zero
	}
	if spec.Template.Spec.RestartPolicy == "" {
		spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	}
	spec.Template.Spec.Volumes = append(spec.Template.Spec.Volumes, corev1.Volume{
		Name:         "data",
		VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: r.Status.PVC}},
	})
	for i := range spec.Template.Spec.Containers {
		c := &spec.Template.Spec.Containers[i]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: "/data"})
	}
	if spec.Template.Labels == nil {
		spec.Template.Labels = map[string]string{}
	}
	spec.Template.Labels[v1alpha1.LabelRestore] = labelValue(r.Name)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: name, Labels: map[string]string{
			v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelRestore: labelValue(r.Name),
		}},
		Spec: spec,
	}
}

// rollingBack undoes a failed restore: the verification Job goes, the
// workloads stop, the restored claim (its volume retained) is replaced by
// one bound to the old volume, and the workloads start again. Nothing is
// deleted but claims: both volumes stay.
func (e *Executor) rollingBack(ctx context.Context, r *v1alpha1.Restore) (v1alpha1.RestorePhase, error) {
	var job batchv1.Job
	err := e.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: VerificationJobName(r.Name)}, &job)
	if err == nil && job.DeletionTimestamp == nil {
		if err := e.Client.Delete(ctx, &job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("delete verification job: %w", err)
		}
	} else if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("get verification job: %w", err)
	}
	back, err := e.claimBack(ctx, r)
	if err != nil || !back {
		return "", err
	}
	waiting, err := e.scaleUp(ctx, r)
	if err != nil {
		return "", err
	}
	if len(waiting) > 0 {
		return e.wait(ctx, r, "rolling back: waiting for the rollout of %s", strings.Join(waiting, ", "))
	}
	what := "workloads started again"
	if r.Status.OldPV != "" {
		what = fmt.Sprintf("claim %s is bound to its old volume %s again and its workloads run", r.Status.PVC, r.Status.OldPV)
	}
	reason := r.Status.FailureReason
	msg := fmt.Sprintf("rolled back after %s failed (%s: %s): %s", r.Status.FailedPhase, reason, failureMessage(r), what)
	if r.Status.NewPV != "" {
		msg += "; the restored volume " + r.Status.NewPV + " is retained for inspection"
	}
	return "", e.finish(ctx, r, v1alpha1.RestoreRolledBack, reason, msg)
}

// claimBack makes sure the claim is bound to the old volume, and reports
// whether it is.
func (e *Executor) claimBack(ctx context.Context, r *v1alpha1.Restore) (bool, error) {
	if r.Status.Claim == nil || r.Status.OldPV == "" {
		return true, nil
	}
	var pvc corev1.PersistentVolumeClaim
	err := e.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Status.PVC}, &pvc)
	switch {
	case err != nil && !apierrors.IsNotFound(err):
		return false, fmt.Errorf("get claim: %w", err)
	case err == nil && (string(pvc.UID) == r.Status.Claim.UID || pvc.Spec.VolumeName == r.Status.OldPV):
		// The old claim was never deleted, or the rollback claim exists.
		if string(pvc.UID) != r.Status.Claim.UID && pvc.Status.Phase != corev1.ClaimBound {
			_, err := e.wait(ctx, r, "rolling back: waiting for claim %s to be bound to the old volume %s", r.Status.PVC, r.Status.OldPV)
			return false, err
		}
		if pvc.DeletionTimestamp != nil {
			_, err := e.wait(ctx, r, "rolling back: claim %s is being deleted; waiting to re-create it on volume %s", r.Status.PVC, r.Status.OldPV)
			return false, err
		}
		return true, nil
	case err == nil && pvc.Labels[v1alpha1.LabelRestore] != labelValue(r.Name):
		return false, fail("ClaimReplaced", "claim %s (uid %s) was created by someone else; the old volume %s is retained: bind it by hand", r.Status.PVC, pvc.UID, r.Status.OldPV)
	case err == nil:
		// The restored claim: stop its users, keep its volume, delete it.
		for _, w := range r.Status.Workloads {
			if err := scale(ctx, e.Client, r.Namespace, w.WorkloadRef, 0); err != nil {
				return false, err
			}
		}
		pods, err := mountingPods(ctx, e.Client, r.Namespace, r.Status.PVC)
		if err != nil {
			return false, err
		}
		if len(pods) > 0 {
			_, err := e.wait(ctx, r, "rolling back: waiting until no pod mounts claim %s (still: %s)", r.Status.PVC, strings.Join(pods, ", "))
			return false, err
		}
		if pvc.Spec.VolumeName != "" {
			r.Status.NewPV = pvc.Spec.VolumeName
			if err := e.retain(ctx, pvc.Spec.VolumeName); err != nil {
				return false, err
			}
		}
		if pvc.DeletionTimestamp == nil {
			uid := pvc.UID
			if err := e.Client.Delete(ctx, &pvc, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
				return false, fmt.Errorf("delete restored claim: %w", err)
			}
		}
		_, err = e.wait(ctx, r, "rolling back: waiting for the restored claim %s to be gone", r.Status.PVC)
		return false, err
	}
	// No claim: free the old volume for a claim of the same name, and
	// create that claim bound to it.
	if err := e.release(ctx, r); err != nil {
		return false, err
	}
	nc, err := ClaimFrom(r.Status.Claim, r.Namespace, r.Status.PVC, labelValue(r.Name), "", r.Status.OldPV)
	if err != nil {
		return false, fail("InvalidClaim", "%v", err)
	}
	if err := e.Client.Create(ctx, nc); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create claim on the old volume: %w", err)
	}
	_, err = e.wait(ctx, r, "rolling back: waiting for claim %s to be bound to the old volume %s", r.Status.PVC, r.Status.OldPV)
	return false, err
}

// release makes the retained old volume bindable by a new claim of the
// same name: its claimRef keeps the name and drops the old claim's uid.
func (e *Executor) release(ctx context.Context, r *v1alpha1.Restore) error {
	var pv corev1.PersistentVolume
	if err := e.Client.Get(ctx, client.ObjectKey{Name: r.Status.OldPV}, &pv); err != nil {
		if apierrors.IsNotFound(err) {
			return fail("VolumeNotFound", "the old volume %s is gone; the safety snapshot %s holds the data", r.Status.OldPV, r.Status.SafetySnapshot)
		}
		return fmt.Errorf("get persistent volume: %w", err)
	}
	ref := pv.Spec.ClaimRef
	if ref != nil && ref.UID == "" && ref.Namespace == r.Namespace && ref.Name == r.Status.PVC {
		return nil
	}
	if ref != nil && ref.UID != "" && ref.UID != types.UID(r.Status.Claim.UID) {
		return fail("VolumeTaken", "the old volume %s is bound to another claim (%s/%s)", pv.Name, ref.Namespace, ref.Name)
	}
	orig := pv.DeepCopy()
	pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: r.Namespace, Name: r.Status.PVC}
	if err := e.Client.Patch(ctx, &pv, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("release persistent volume %s: %w", pv.Name, err)
	}
	return nil
}

// labelValue fits s into a label value.
func labelValue(s string) string {
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-_.")
	}
	return s
}

// failureMessage is the message recorded when r started rolling back.
func failureMessage(r *v1alpha1.Restore) string {
	for i := len(r.Status.Phases) - 1; i >= 0; i-- {
		if p := r.Status.Phases[i]; p.Phase == v1alpha1.RestoreRollingBack {
			return strings.TrimSuffix(p.Message, "; rolling back")
		}
	}
	return ""
}
