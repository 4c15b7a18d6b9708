package restore_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"google.golang.org/grpc/codes"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/csidriver"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/restore"
)

// checkRestored checks a Completed restore of claim: it holds exactly the
// snapshot's files, on a new volume, with the original claim's labels; the
// old volume is retained; the safety snapshot holds the changed files.
func checkRestored(t *testing.T, r *v1alpha1.Restore, claimName string, d data) {
	t.Helper()
	ns := r.Namespace
	if r.Status.Phase != v1alpha1.RestoreCompleted {
		t.Fatalf("restore %s ended %s (%s: %s), want Completed", r.Name, r.Status.Phase, r.Status.FailureReason, r.Status.Message)
	}
	pvc, err := getClaim(t.Context(), ns, claimName)
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.VolumeName != r.Status.NewPV || r.Status.NewPV == "" || r.Status.NewPV == r.Status.OldPV {
		t.Errorf("claim %s on volume %s; status new %q old %q", claimName, pvc.Spec.VolumeName, r.Status.NewPV, r.Status.OldPV)
	}
	if pvc.Labels["stateguard.test/keep"] != "me" {
		t.Errorf("the restored claim lost the original's labels: %v", pvc.Labels)
	}
	if diff := cmp.Diff(d.snapshot, sums(t, ns, claimName)); diff != "" {
		t.Errorf("restored files (-snapshot +claim):\n%s", diff)
	}
	var old corev1.PersistentVolume
	if err := kc.Get(t.Context(), client.ObjectKey{Name: r.Status.OldPV}, &old); err != nil {
		t.Fatalf("the old volume: %v", err)
	}
	if old.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("old volume %s reclaim policy %s, want Retain", old.Name, old.Spec.PersistentVolumeReclaimPolicy)
	}
	if r.Status.SafetySnapshot == "" {
		t.Fatal("no safety snapshot recorded")
	}
	var safety snapv1.VolumeSnapshot
	if err := kc.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: r.Status.SafetySnapshot}, &safety); err != nil {
		t.Fatal(err)
	}
	if safety.Labels[v1alpha1.LabelPinned] != "true" || safety.Labels[v1alpha1.LabelRestore] != r.Name {
		t.Errorf("safety snapshot labels %v, want pinned and the restore's", safety.Labels)
	}
	if diff := cmp.Diff(d.changed, restoredSums(t, ns, r.Status.SafetySnapshot)); diff != "" {
		t.Errorf("safety snapshot files (-before the restore +safety snapshot):\n%s", diff)
	}
}

func TestRestoreOfADeploymentsClaimInPlace(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	d := deployment(t, ns)
	executor(t, ns, ec)
	start := time.Now()
	if err := kc.Create(t.Context(), newRestore(ns, "r1")); err != nil {
		t.Fatal(err)
	}
	r := ended(t, ns, "r1")
	took := time.Since(start)
	checkRestored(t, r, "data", d)
	waitRunning(t, ns, "data", 2)
	if diff := cmp.Diff([]v1alpha1.RestoreWorkload{{WorkloadRef: v1alpha1.WorkloadRef{Kind: "Deployment", Name: "shop"}, Replicas: 2}}, r.Status.Workloads); diff != "" {
		t.Errorf("workloads (-want +got):\n%s", diff)
	}
	var phases []v1alpha1.RestorePhase
	for _, p := range r.Status.Phases {
		phases = append(phases, p.Phase)
	}
	want := []v1alpha1.RestorePhase{"Pending", "SafetySnapshot", "ScalingDown", "Restoring", "Verifying", "ScalingUp", "Completed"}
	if diff := cmp.Diff(want, phases); diff != "" {
		t.Errorf("phases (-want +got):\n%s", diff)
	}
	if r.Status.VolumeSnapshot != "known-good" || r.Status.Recommendation != nil {
		t.Errorf("status volume snapshot %q, recommendation %+v; want the spec's, none", r.Status.VolumeSnapshot, r.Status.Recommendation)
	}
	// A Kubernetes Event per phase, for kubectl describe and restore logs.
	kev := kubeEvents(t, ns, "r1", "Pending", "SafetySnapshot", "ScalingDown", "Restoring", "Verifying", "ScalingUp", "Completed")
	if !strings.HasPrefix(kev["Completed"], "Normal: claim data restored from known-good") {
		t.Errorf("Completed event %q", kev["Completed"])
	}

	evs := decisionEvents(t, ec, ns)
	if n := len(evs[events.TypeRestoreStarted]); n != 1 {
		t.Errorf("%d restore.started events, want 1", n)
	}
	if n := len(evs[events.TypeRestoreProgressed]); n != 5 {
		t.Errorf("%d restore.progressed events, want 5 (one per phase between Pending and Completed)", n)
	}
	done := onlyCompleted(t, evs)
	// snapshot_time is when the csi-snapshotter cut the restored snapshot
	// (its snapshot.completed's creation_time); snapshot_pvc stays empty,
	// the snapshot is of the claim restored.
	wantDone := events.RestoreCompleted{
		RestoreID: "r1", Namespace: ns, PVC: "data", VolumeSnapshot: "known-good", PV: r.Status.NewPV, Incident: "inc-1",
		Restore: "r1", SafetySnapshot: r.Status.SafetySnapshot, OldPV: r.Status.OldPV, CompletedAt: done.CompletedAt,
		SnapshotTime: ptr.To(snapshotCut(t, ns, "known-good")),
	}
	if diff := cmp.Diff(wantDone, done); diff != "" {
		t.Errorf("restore.completed (-want +got):\n%s", diff)
	}
	t.Logf("Deployment's claim restored in place in %s", took.Round(time.Millisecond))
}

// TestRestoreOfAStatefulSetsClaimInPlaceVerified restores a
// ReadWriteOncePod claim with a verification Job: the scheduler refuses a
// second pod on such a claim, so the Job can only run while the
// StatefulSet is stopped — the executor verifies before it scales up.
func TestRestoreOfAStatefulSetsClaimInPlaceVerified(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "ghcr.io/acme/db:1.0.0",
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/db"}}}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: map[string]string{"stateguard.test/keep": "me"}},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
	if err := kc.Create(t.Context(), sts); err != nil {
		t.Fatal(err)
	}
	waitBound(t, ns, "data-db-0")
	waitRunning(t, ns, "data-db-0", 1)
	d := fill(t, ns, "data-db-0")
	executor(t, ns, ec)
	verify := func(r *v1alpha1.Restore) {
		r.Spec.Verification = &v1alpha1.RestoreVerification{Timeout: "2m", Template: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "check", Image: "ghcr.io/acme/db-check:1.0.0", Command: []string{"db-check", "/data"},
			}}}},
		}}
	}
	if err := kc.Create(t.Context(), newRestore(ns, "r1", verify)); err != nil {
		t.Fatal(err)
	}
	r := ended(t, ns, "r1")
	checkRestored(t, r, "data-db-0", d)
	waitRunning(t, ns, "data-db-0", 1)
	var job batchv1.Job
	if err := kc.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: restore.VerificationJobName("r1")}, &job); err != nil {
		t.Fatalf("verification job: %v", err)
	}
	if job.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "data-db-0" || job.Status.Succeeded != 1 {
		t.Errorf("verification job mounted %v, succeeded %d", job.Spec.Template.Spec.Volumes, job.Status.Succeeded)
	}
	if r.Status.Workloads[0].Kind != "StatefulSet" || r.Status.Workloads[0].Name != "db" {
		t.Errorf("workloads %+v, want StatefulSet db", r.Status.Workloads)
	}
	var scaledUp *metav1.Time
	for _, p := range r.Status.Phases {
		if p.Phase == v1alpha1.RestoreScalingUp {
			scaledUp = &p.At
		}
	}
	if scaledUp == nil || job.Status.CompletionTime == nil || job.Status.CompletionTime.After(scaledUp.Time) {
		t.Errorf("verification Job completed at %v, the StatefulSet scaled up at %v: want the Job done first", job.Status.CompletionTime, scaledUp)
	}
}

// checkRolledBack checks a RolledBack restore: the claim is on its old
// volume with the files it had before the restore, and the workload runs.
func checkRolledBack(t *testing.T, r *v1alpha1.Restore, reason string, d data) {
	t.Helper()
	if r.Status.Phase != v1alpha1.RestoreRolledBack || r.Status.FailureReason != reason {
		t.Fatalf("restore ended %s (%s: %s), want RolledBack (%s)", r.Status.Phase, r.Status.FailureReason, r.Status.Message, reason)
	}
	pvc, err := getClaim(t.Context(), r.Namespace, "data")
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.VolumeName != r.Status.OldPV || pvc.Status.Phase != corev1.ClaimBound {
		t.Errorf("claim data on %q (%s), want the old volume %s", pvc.Spec.VolumeName, pvc.Status.Phase, r.Status.OldPV)
	}
	if pvc.Labels["stateguard.test/keep"] != "me" {
		t.Errorf("the claim lost its labels: %v", pvc.Labels)
	}
	if diff := cmp.Diff(d.changed, sums(t, r.Namespace, "data")); diff != "" {
		t.Errorf("files after the rollback (-before the restore +now):\n%s", diff)
	}
	waitRunning(t, r.Namespace, "data", 2)
}

func TestSnapshotDeletedAfterTheOldClaimIsGoneRollsBack(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	d := deployment(t, ns)
	// The new volume cannot be provisioned while the fault holds: the
	// restore waits in Restoring, with the old claim gone.
	heal := cluster.Driver.Inject("CreateVolume", csidriver.Fault{Code: codes.Unavailable, Message: "array busy"})
	defer heal()
	executor(t, ns, ec)
	if err := kc.Create(t.Context(), newRestore(ns, "r1")); err != nil {
		t.Fatal(err)
	}
	var r v1alpha1.Restore
	eventually(t, "the old claim gone, the restore in Restoring", 2*time.Minute, func(ctx context.Context) (bool, error) {
		if err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "r1"}, &r); err != nil || r.Status.Phase != v1alpha1.RestoreRestoring {
			return false, nil //nolint:nilerr // retried
		}
		pvc, err := getClaim(ctx, ns, "data")
		return err != nil || string(pvc.UID) != r.Status.Claim.UID, nil
	})
	if err := kc.Delete(t.Context(), &snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "known-good"}}); err != nil {
		t.Fatal(err)
	}
	got := ended(t, ns, "r1")
	checkRolledBack(t, got, "SnapshotNotFound", d)
	evs := decisionEvents(t, ec, ns)
	if len(evs[events.TypeRestoreFailed]) != 1 || len(evs[events.TypeRestoreCompleted]) != 0 {
		t.Fatalf("%d restore.failed, %d restore.completed; want 1 and 0", len(evs[events.TypeRestoreFailed]), len(evs[events.TypeRestoreCompleted]))
	}
	f, err := events.Decode[events.RestoreFailed](evs[events.TypeRestoreFailed][0])
	if err != nil {
		t.Fatal(err)
	}
	if !f.RolledBack || f.Phase != "Restoring" || !strings.Contains(f.Reason, "known-good") || f.OldPV != got.Status.OldPV {
		t.Errorf("restore.failed %+v, want rolled back in Restoring naming the snapshot", f)
	}
}

func TestFailedVerificationRollsBack(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	d := deployment(t, ns)
	executor(t, ns, ec)
	// The verification pod fits no node: the Job passes its deadline.
	verify := func(r *v1alpha1.Restore) {
		r.Spec.Verification = &v1alpha1.RestoreVerification{Timeout: "3s", Template: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				NodeSelector: map[string]string{"stateguard.test/no-such-node": "true"},
				Containers:   []corev1.Container{{Name: "check", Image: "ghcr.io/acme/db-check:1.0.0"}},
			}},
		}}
	}
	if err := kc.Create(t.Context(), newRestore(ns, "r1", verify)); err != nil {
		t.Fatal(err)
	}
	r := ended(t, ns, "r1")
	checkRolledBack(t, r, "VerificationFailed", d)
	kev := kubeEvents(t, ns, "r1", "VerificationFailed", "RollingBack", "RolledBack")
	for _, reason := range []string{"VerificationFailed", "RollingBack", "RolledBack"} {
		if !strings.HasPrefix(kev[reason], "Warning: ") {
			t.Errorf("%s event %q, want a Warning", reason, kev[reason])
		}
	}
	if !strings.Contains(kev["VerificationFailed"], "Verifying failed: verification Job r1-verify") {
		t.Errorf("VerificationFailed event %q, want the phase and the reason", kev["VerificationFailed"])
	}
	if r.Status.NewPV == "" {
		t.Fatal("no new volume recorded")
	}
	var restored corev1.PersistentVolume
	if err := kc.Get(t.Context(), client.ObjectKey{Name: r.Status.NewPV}, &restored); err != nil {
		t.Fatalf("the restored volume is gone: %v", err)
	}
	if restored.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("restored volume reclaim policy %s, want Retain", restored.Spec.PersistentVolumeReclaimPolicy)
	}
	if diff := cmp.Diff(d.snapshot, treeSums(t, restored.Spec.CSI.VolumeHandle)); diff != "" {
		t.Errorf("the retained restored volume (-snapshot +volume):\n%s", diff)
	}
}

func treeSums(t *testing.T, handle string) map[string]string {
	t.Helper()
	s, err := csidriver.TreeSums(cluster.Driver.VolumePath(handle))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExecutorStoppedMidwayAndRestartedCompletes(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	d := deployment(t, ns)
	// Provisioning the new volume takes 5s: the executor is stopped in
	// Restoring, with the old claim deleted or gone.
	heal := cluster.Driver.Inject("CreateVolume", csidriver.Fault{Delay: 5 * time.Second, Times: 1})
	defer heal()
	stop := executor(t, ns, ec)
	if err := kc.Create(t.Context(), newRestore(ns, "r1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the restore in Restoring", 2*time.Minute, func(ctx context.Context) (bool, error) {
		var r v1alpha1.Restore
		err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "r1"}, &r)
		return err == nil && r.Status.Phase == v1alpha1.RestoreRestoring, nil
	})
	stop()
	heal()
	executor(t, ns, ec)
	r := ended(t, ns, "r1")
	checkRestored(t, r, "data", d)
	waitRunning(t, ns, "data", 2)
	if n := len(decisionEvents(t, ec, ns)[events.TypeRestoreCompleted]); n != 1 {
		t.Errorf("%d restore.completed events, want 1", n)
	}
}

func TestSecondRestoreOfAClaimIsRefused(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	d := deployment(t, ns)
	// Provisioning the new volume takes 5s: the first restore is still in
	// Restoring when the second is created.
	heal := cluster.Driver.Inject("CreateVolume", csidriver.Fault{Delay: 5 * time.Second, Times: 1})
	defer heal()
	executor(t, ns, ec)
	if err := kc.Create(t.Context(), newRestore(ns, "first")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first restore in Restoring", 2*time.Minute, func(ctx context.Context) (bool, error) {
		var r v1alpha1.Restore
		err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "first"}, &r)
		return err == nil && r.Status.Phase == v1alpha1.RestoreRestoring, nil
	})
	if err := kc.Create(t.Context(), newRestore(ns, "second")); err != nil {
		t.Fatal(err)
	}
	second := ended(t, ns, "second")
	if second.Status.Phase != v1alpha1.RestoreFailed || second.Status.FailureReason != "ClaimBusy" || !strings.Contains(second.Status.Message, "first") {
		t.Errorf("second restore %s (%s): %s; want Failed, ClaimBusy, naming the first", second.Status.Phase, second.Status.FailureReason, second.Status.Message)
	}
	heal()
	checkRestored(t, ended(t, ns, "first"), "data", d)
}

func TestBarePodIsRefused(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	if err := kc.Create(t.Context(), claim(ns, "data")); err != nil {
		t.Fatal(err)
	}
	waitBound(t, ns, "data")
	d := fill(t, ns, "data")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "by-hand", Labels: labels}, Spec: podSpec("data").Spec}
	if err := kc.Create(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, "data", 1)
	executor(t, ns, ec)
	if err := kc.Create(t.Context(), newRestore(ns, "r1")); err != nil {
		t.Fatal(err)
	}
	r := ended(t, ns, "r1")
	if r.Status.Phase != v1alpha1.RestoreFailed || r.Status.FailureReason != "BarePod" || !strings.Contains(r.Status.Message, "by-hand") {
		t.Errorf("restore %s (%s): %s; want Failed, BarePod, naming the pod", r.Status.Phase, r.Status.FailureReason, r.Status.Message)
	}
	if diff := cmp.Diff(d.changed, sums(t, ns, "data")); diff != "" {
		t.Errorf("a refused restore changed the files (-before +after):\n%s", diff)
	}
	if n := len(decisionEvents(t, ec, ns)[events.TypeRestoreFailed]); n != 1 {
		t.Errorf("%d restore.failed events, want 1", n)
	}
}

func TestRestoreRequestCreatesOneRestore(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	h := &restore.Requests{Client: kc, Log: discard}
	sub, err := ec.Consume(t.Context(), restore.Consumer(), h.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Stop(context.Background()) }()
	req := events.RestoreRequested{RequestID: "req-42", Namespace: ns, PVC: "data", IncidentID: "inc-7", Snapshot: "known-good", Actor: "alice", Reason: "restore before the breach", RequestedAt: time.Now().UTC()}
	// The same request twice (a retry with the same id, published as a
	// new event id so JetStream stores both): one Restore.
	for _, id := range []string{"a", "b"} {
		ev, err := ec.NewEvent(events.TypeRestoreRequested, "restore-requested-"+ns+"-"+id, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := ec.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	var list v1alpha1.RestoreList
	eventually(t, "the requested Restore", 30*time.Second, func(ctx context.Context) (bool, error) {
		err := kc.List(ctx, &list, client.InNamespace(ns))
		return err == nil && len(list.Items) > 0, nil
	})
	// Let the second request be handled too before counting again.
	eventually(t, "both requests handled", 30*time.Second, func(ctx context.Context) (bool, error) {
		info, err := ec.JetStream().Consumer(ctx, events.StreamDecision, restore.ConsumerName)
		if err != nil {
			return false, nil //nolint:nilerr // retried
		}
		return info.CachedInfo().NumPending == 0 && info.CachedInfo().NumAckPending == 0, nil
	})
	if err := kc.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("%d Restores, want 1", len(list.Items))
	}
	got := list.Items[0]
	if got.Name != events.RestoreName("req-42") {
		t.Errorf("Restore named %s, want %s", got.Name, events.RestoreName("req-42"))
	}
	want := v1alpha1.RestoreSpec{VolumeSnapshot: "known-good", PVC: "data", Incident: "inc-7", RequestID: "req-42", Actor: "alice", Reason: "restore before the breach"}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("Restore spec (-want +got):\n%s", diff)
	}
}

// TestRestoreTableAndImmutableSpec asks the API server for the table of
// `kubectl get restores` and checks that a Restore's spec cannot change.
func TestRestoreTableAndImmutableSpec(t *testing.T) {
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	r := newRestore(ns, "r1")
	if err := kc.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	r.Status = v1alpha1.RestoreStatus{Phase: v1alpha1.RestoreRestoring, PVC: "data", VolumeSnapshot: "known-good", SafetySnapshot: "r1-safety", NewPV: "pv-1", Message: "waiting"}
	if err := kc.Status().Update(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	raw, err := cluster.Client.CoreV1().RESTClient().Get().
		AbsPath("/apis/stateguard.io/v1alpha1/namespaces", ns, "restores").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(t.Context())
	if err != nil {
		t.Fatalf("get table: %v: %s", err, raw)
	}
	var table struct {
		ColumnDefinitions []struct {
			Name     string `json:"name"`
			Priority int    `json:"priority"`
		} `json:"columnDefinitions"`
		Rows []struct {
			Cells []any `json:"cells"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		if c.Priority == 0 {
			cols = append(cols, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Name", "PVC", "Snapshot", "Phase", "Age"}, cols); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if len(table.Rows) != 1 || len(table.Rows[0].Cells) < 4 {
		t.Fatalf("rows %+v", table.Rows)
	}
	if diff := cmp.Diff([]any{"r1", "data", "known-good", "Restoring"}, table.Rows[0].Cells[:4]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	r.Spec.VolumeSnapshot = "another"
	if err := kc.Update(t.Context(), r); err == nil || !strings.Contains(err.Error(), "cannot change") {
		t.Errorf("changing the spec: %v, want refused", err)
	}
	// Neither a snapshot nor an incident: refused by the API server.
	if err := kc.Create(t.Context(), newRestore(ns, "r2", func(r *v1alpha1.Restore) { r.Spec.VolumeSnapshot, r.Spec.Incident = "", "" })); err == nil || !strings.Contains(err.Error(), "name the volumeSnapshot") {
		t.Errorf("a Restore naming no snapshot and no incident: %v, want refused", err)
	}
}
