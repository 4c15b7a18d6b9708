package restoretests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/managed"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
	"github.com/stateguard/stateguard/services/snapshotter/internal/retention"
	"github.com/stateguard/stateguard/services/snapshotter/internal/schedule"
)

// Tester runs the restore tests of policies.
type Tester struct {
	Client  client.Client
	Events  events.Publisher
	Clock   clock.PassiveClock
	Log     *slog.Logger
	Metrics *metrics.Metrics
}

// Annotations on the objects of a restore test.
const (
	annotationTestPolicy   = "stateguard.io/restore-test-policy"
	annotationTestSnapshot = "stateguard.io/restore-test-snapshot"
	annotationTestPVC      = "stateguard.io/restore-test-pvc"
)

// restoreTestDeadline bounds a verification Job.
const restoreTestDeadline int64 = 3600

// Run finishes p's restore tests whose Job completed and starts the
// policy's due one on sched (nil: the policy has no restore test),
// recording its slot in p's status. It returns the next restore-test slot.
func (c *Tester) Run(ctx context.Context, p *v1alpha1.SnapshotPolicy, sched *schedule.Schedule) (time.Time, error) {
	rt := p.Spec.RestoreTest
	if rt == nil || sched == nil {
		return time.Time{}, nil
	}
	vns := rt.VerificationNamespace
	if vns == "" {
		vns = p.Namespace
	}
	if err := c.finishRestoreTests(ctx, p, vns); err != nil {
		return time.Time{}, err
	}
	last := p.CreationTimestamp.Time
	if p.Status.LastRestoreTest != nil {
		last = p.Status.LastRestoreTest.Time
	}
	run := sched.Due(last, c.Clock.Now())
	if run.Slot.IsZero() {
		return run.Next, nil
	}
	if err := c.startRestoreTest(ctx, p, vns, run.Slot); err != nil {
		return run.Next, err
	}
	orig := p.DeepCopy()
	p.Status.LastRestoreTest = &metav1.Time{Time: run.Slot}
	if err := c.Client.Status().Patch(ctx, p, client.MergeFrom(orig)); err != nil {
		return run.Next, fmt.Errorf("update status: %w", err)
	}
	return run.Next, nil
}

// Name is the name of the objects of p's restore test of slot.
func Name(p *v1alpha1.SnapshotPolicy, slot time.Time) string {
	sum := sha256.Sum256([]byte(p.Namespace + "/" + p.Name))
	return "restore-test-" + hex.EncodeToString(sum[:])[:10] + "-" + slot.UTC().Format("200601021504")
}

func policyKey(p *v1alpha1.SnapshotPolicy) string { return p.Namespace + "/" + p.Name }

// newestReady returns the policy's newest ready snapshot, or nil.
func (c *Tester) newestReady(ctx context.Context, p *v1alpha1.SnapshotPolicy) (*snapv1.VolumeSnapshot, error) {
	var list snapv1.VolumeSnapshotList
	if err := c.Client.List(ctx, &list, client.InNamespace(p.Namespace), client.MatchingLabels{
		v1alpha1.LabelManagedBy: v1alpha1.ManagedBy,
		v1alpha1.LabelPolicy:    schedule.LabelValue(p.Name),
	}); err != nil {
		return nil, fmt.Errorf("list volume snapshots: %w", err)
	}
	var newest *snapv1.VolumeSnapshot
	for i := range list.Items {
		vs := &list.Items[i]
		if managed.State(vs) != retention.Ready || vs.DeletionTimestamp != nil {
			continue
		}
		if newest == nil || managed.TakenAt(vs).After(managed.TakenAt(newest)) {
			newest = vs
		}
	}
	return newest, nil
}

// startRestoreTest restores the newest ready snapshot into a scratch PVC in
// the verification namespace and starts the verification Job on it. When
// that namespace is not the snapshot's, the snapshot is first made visible
// there as a pre-provisioned VolumeSnapshotContent (deletion policy Retain)
// and a VolumeSnapshot bound to it.
func (c *Tester) startRestoreTest(ctx context.Context, p *v1alpha1.SnapshotPolicy, vns string, slot time.Time) error {
	rt := p.Spec.RestoreTest
	src, err := c.newestReady(ctx, p)
	if err != nil {
		return err
	}
	log := c.Log.With("namespace", p.Namespace, "policy", p.Name)
	if src == nil {
		log.Warn("restore test skipped: no ready snapshot", "slot", slot)
		return nil
	}
	name := Name(p, slot)
	labels := map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelRestoreTest: name}
	annotations := map[string]string{
		annotationTestPolicy:   policyKey(p),
		annotationTestSnapshot: src.Namespace + "/" + src.Name,
		annotationTestPVC:      managed.Claim(src),
	}
	meta := func(namespace string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels, Annotations: annotations}
	}
	dataSource := src.Name
	if vns != src.Namespace {
		if err := c.copySnapshot(ctx, src, vns, name, meta); err != nil {
			return err
		}
		dataSource = name
	}
	size := resource.MustParse("1Gi")
	if src.Status != nil && src.Status.RestoreSize != nil && !src.Status.RestoreSize.IsZero() {
		size = *src.Status.RestoreSize
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: meta(vns),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			DataSource:  &corev1.TypedLocalObjectReference{APIGroup: &snapv1.SchemeGroupVersion.Group, Kind: "VolumeSnapshot", Name: dataSource},
		},
	}
	var orig corev1.PersistentVolumeClaim
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: src.Namespace, Name: managed.Claim(src)}, &orig); err == nil {
		pvc.Spec.StorageClassName = orig.Spec.StorageClassName
		pvc.Spec.AccessModes = orig.Spec.AccessModes
	}
	if err := c.Client.Create(ctx, pvc); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create scratch pvc: %w", err)
	}
	backoff := int32(0)
	deadline := restoreTestDeadline
	job := &batchv1.Job{
		ObjectMeta: meta(vns),
		Spec: batchv1.JobSpec{
			BackoffLimit:          &backoff,
			ActiveDeadlineSeconds: &deadline,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name:         "verify",
						Image:        rt.Image,
						Command:      rt.Command,
						VolumeMounts: []corev1.VolumeMount{{Name: "restored", MountPath: "/data"}},
					}},
					Volumes: []corev1.Volume{{Name: "restored", VolumeSource: corev1.VolumeSource{
						PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name},
					}}},
				},
			},
		},
	}
	if err := c.Client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create verification job: %w", err)
	}
	log.Info("restore test started", "volume_snapshot", src.Name, "verification_namespace", vns, "job", name)
	return nil
}

func (c *Tester) copySnapshot(ctx context.Context, src *snapv1.VolumeSnapshot, vns, name string, meta func(string) metav1.ObjectMeta) error {
	if src.Status == nil || src.Status.BoundVolumeSnapshotContentName == nil {
		return fmt.Errorf("snapshot %s/%s has no bound content", src.Namespace, src.Name)
	}
	var content snapv1.VolumeSnapshotContent
	if err := c.Client.Get(ctx, client.ObjectKey{Name: *src.Status.BoundVolumeSnapshotContentName}, &content); err != nil {
		return fmt.Errorf("get content: %w", err)
	}
	if content.Status == nil || content.Status.SnapshotHandle == nil {
		return fmt.Errorf("content %s has no snapshot handle", content.Name)
	}
	m := meta("")
	copyContent := &snapv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: m.Labels, Annotations: m.Annotations},
		Spec: snapv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef:       corev1.ObjectReference{Kind: "VolumeSnapshot", APIVersion: snapv1.SchemeGroupVersion.String(), Namespace: vns, Name: name},
			DeletionPolicy:          snapv1.VolumeSnapshotContentRetain,
			Driver:                  content.Spec.Driver,
			VolumeSnapshotClassName: content.Spec.VolumeSnapshotClassName,
			Source:                  snapv1.VolumeSnapshotContentSource{SnapshotHandle: content.Status.SnapshotHandle},
		},
	}
	if err := c.Client.Create(ctx, copyContent); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create content copy: %w", err)
	}
	contentName := name
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: meta(vns),
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{VolumeSnapshotContentName: &contentName}},
	}
	if err := c.Client.Create(ctx, vs); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create snapshot copy: %w", err)
	}
	return nil
}

// JobResult is the rule of a verification Job's outcome: whether job
// finished and whether it passed, with the reason when it failed.
func JobResult(job *batchv1.Job) (done, passed bool, msg string) {
	for _, cond := range job.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobComplete:
			return true, true, cond.Message
		case batchv1.JobFailed:
			return true, false, cond.Reason + ": " + cond.Message
		}
	}
	switch {
	case job.Status.Succeeded > 0:
		return true, true, ""
	case job.Status.Failed > 0:
		return true, false, "verification pod failed"
	}
	return false, false, ""
}

// finishRestoreTests publishes snapshot.verified for the policy's finished
// verification Jobs and removes their objects. The event id derives from the
// Job's uid, so a crash before the clean-up cannot publish twice.
func (c *Tester) finishRestoreTests(ctx context.Context, p *v1alpha1.SnapshotPolicy, vns string) error {
	var jobs batchv1.JobList
	if err := c.Client.List(ctx, &jobs, client.InNamespace(vns), client.HasLabels{v1alpha1.LabelRestoreTest}); err != nil {
		return fmt.Errorf("list verification jobs: %w", err)
	}
	var errs []error
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if job.Annotations[annotationTestPolicy] != policyKey(p) || job.DeletionTimestamp != nil {
			continue
		}
		done, passed, msg := JobResult(job)
		if !done {
			continue
		}
		snapNS, snapName, _ := cutKey(job.Annotations[annotationTestSnapshot])
		ev, err := c.Events.NewEvent(events.TypeSnapshotVerified, "snapshot-verified-"+string(job.UID), events.SnapshotVerified{
			Namespace: snapNS, PVC: job.Annotations[annotationTestPVC], VolumeSnapshot: snapName, Policy: p.Name,
			Passed: passed, Job: events.ObjectRef{Kind: "Job", Namespace: job.Namespace, Name: job.Name}, Message: msg,
		})
		if err != nil {
			return err
		}
		if err := c.Events.Publish(ctx, ev); err != nil {
			errs = append(errs, fmt.Errorf("publish verified: %w", err))
			continue
		}
		result := "failed"
		if passed {
			result = "passed"
		}
		c.Metrics.RestoreTests.WithLabelValues(p.Namespace, p.Name, result).Inc()
		c.Log.Info("restore test finished", "namespace", p.Namespace, "policy", p.Name, "volume_snapshot", snapName, "passed", passed, "event_id", ev.ID())
		if err := c.cleanupRestoreTest(ctx, job); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cutKey(k string) (string, string, bool) { return strings.Cut(k, "/") }

// cleanupRestoreTest deletes the Job (and its pods), the scratch PVC, and the
// snapshot copies of a restore test. The Job goes last: while it exists the
// test is found again and the clean-up retried.
func (c *Tester) cleanupRestoreTest(ctx context.Context, job *batchv1.Job) error {
	name := job.Labels[v1alpha1.LabelRestoreTest]
	objs := []client.Object{
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: job.Namespace, Name: name}},
	}
	if snapNS, _, _ := cutKey(job.Annotations[annotationTestSnapshot]); snapNS != job.Namespace {
		objs = append(objs,
			&snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: job.Namespace, Name: name}},
			&snapv1.VolumeSnapshotContent{ObjectMeta: metav1.ObjectMeta{Name: name}},
		)
	}
	for _, o := range objs {
		if err := c.Client.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("clean up restore test %s: %w", name, err)
		}
	}
	if err := c.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("clean up restore test %s: %w", name, err)
	}
	return nil
}
