package controller_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/csidriver"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

func decode[T any](t *testing.T, ev events.Event) T {
	t.Helper()
	v, err := events.Decode[T](ev)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestScheduledSnapshotCompletes(t *testing.T) {
	ns := namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	create(t, pvc(ns, "other", map[string]string{"app": "web"}))
	pod := appPod(t, ns, "data")
	// No kubelet runs (KWOK plays the node), so the exec of this hook
	// fails; with onError: Continue the snapshot is taken anyway.
	// The timeouts bound an exec the API server cannot deliver.
	p := policy(t, ns, "hourly", withHooks(v1alpha1.Hook{Command: []string{"fsfreeze", "-f", "/data"}, OnError: v1alpha1.OnErrorContinue, Timeout: "5s"}),
		func(p *v1alpha1.SnapshotPolicy) {
			p.Spec.Hooks.Post = []v1alpha1.Hook{{Command: []string{"fsfreeze", "-u", "/data"}, Timeout: "5s"}}
		})
	r := newRig(t, ns, p.CreationTimestamp.Time)

	r.pass()
	if got := r.snapshots(); len(got) != 0 {
		t.Fatalf("before the first slot: %d snapshots", len(got))
	}
	r.clock.SetTime(nextHour(p.CreationTimestamp.Time, 1))
	slot := r.clock.Now().Truncate(time.Hour).UTC()
	r.until("snapshot.completed", func() bool { return len(r.published(events.TypeSnapshotCompleted)) > 0 })
	r.pass()
	r.pass()

	snaps := r.snapshots()
	wantName := "hourly-data-" + slot.Format("200601021504")
	if len(snaps) != 1 || snaps[0].Name != wantName {
		t.Fatalf("snapshots %v, want exactly %s", names(snaps), wantName)
	}
	if he := snaps[0].Annotations[v1alpha1.AnnotationHookErrors]; !strings.Contains(he, `pre hook "fsfreeze -f /data"`) || !strings.Contains(he, `post hook "fsfreeze -u /data"`) {
		t.Errorf("hook error not recorded: %v", snaps[0].Annotations)
	}
	completed := r.published(events.TypeSnapshotCompleted)
	if len(completed) != 1 {
		t.Fatalf("%d snapshot.completed events, want 1", len(completed))
	}
	if got, want := completed[0].ID(), "snapshot-completed-"+string(snaps[0].UID); got != want {
		t.Errorf("event id %q, want %q", got, want)
	}
	got := decode[events.SnapshotCompleted](t, completed[0])
	// The digest KWOK's node reports for the image (kubetest's pod-ready
	// Stage: the sha256 of the reference), as the pod's status carries it.
	sum := sha256.Sum256([]byte(appImage))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if id := pod.Status.ContainerStatuses[0].ImageID; id != "ghcr.io/acme/db@"+digest {
		t.Fatalf("the node reports image id %q, want the digest %s", id, digest)
	}
	want := events.SnapshotCompleted{
		Namespace:             ns,
		PVC:                   "data",
		VolumeSnapshot:        wantName,
		VolumeSnapshotContent: "snapcontent-" + string(snaps[0].UID),
		VolumeSnapshotClass:   kubetest.ClassName, // the default class, set by the snapshot-controller
		RestoreSize:           "1Gi",
		Policy:                "hourly",
		Slot:                  &slot,
		Workloads: []events.VolumeWorkload{{
			Pod:     pod.Name, // made by the ReplicaSet of Deployment db
			Owner:   &events.ObjectRef{Kind: "Deployment", Namespace: ns, Name: "db"},
			App:     "db",
			Version: "1.4.2",
			Containers: []events.Container{{
				Name: "db", Image: appImage, ImageID: "ghcr.io/acme/db@" + digest, Digest: digest,
			}},
		}},
		// The claim got the cluster's default StorageClass, whose driver
		// (the test cluster's own) is in no table of encryption parameters.
		Encryption: events.EncryptionUnknown,
		EncryptionEvidence: []string{"StorageClass " + kubetest.ClassName + ": driver " + csidriver.DefaultName +
			" is not in the table of documented encryption parameters and no --encryption-allow entry matches"},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(events.SnapshotCompleted{}, "CreationTime")); diff != "" {
		t.Errorf("snapshot.completed (-want +got):\n%s", diff)
	}
	if got.CreationTime.IsZero() {
		t.Error("creation time missing")
	}

	var stored v1alpha1.SnapshotPolicy
	if err := kc.Get(t.Context(), client.ObjectKeyFromObject(p), &stored); err != nil {
		t.Fatal(err)
	}
	st := stored.Status
	if st.LastRun == nil || !st.LastRun.Time.Equal(slot) || st.LastSnapshot != wantName || st.LastResult != v1alpha1.ResultSucceeded ||
		st.NextRun == nil || !st.NextRun.Time.Equal(slot.Add(time.Hour)) {
		t.Errorf("status %+v", st)
	}
}

func TestCatchUpAfterDowntime(t *testing.T) {
	ns := namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	p := policy(t, ns, "hourly")
	r := newRig(t, ns, p.CreationTimestamp.Time)
	// Nobody ran for five hours: one catch-up snapshot, four missed slots.
	r.clock.SetTime(nextHour(p.CreationTimestamp.Time, 5))
	r.pass()
	r.pass()
	if got := r.snapshots(); len(got) != 1 {
		t.Fatalf("snapshots %v, want one catch-up", names(got))
	}
	missed := r.published(events.TypeSnapshotMissed)
	if len(missed) != 1 {
		t.Fatalf("%d snapshot.missed events, want 1", len(missed))
	}
	m := decode[events.SnapshotMissed](t, missed[0])
	catchUp := r.clock.Now().Truncate(time.Hour).UTC()
	var slots []time.Time
	for h := 4; h >= 1; h-- {
		slots = append(slots, catchUp.Add(-time.Duration(h)*time.Hour))
	}
	want := events.SnapshotMissed{Namespace: ns, Policy: "hourly", Slots: slots, CatchUp: catchUp}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("snapshot.missed (-want +got):\n%s", diff)
	}
}

func TestFailedSnapshotIsReported(t *testing.T) {
	ns := namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	const driverMsg = "storage array offline: controller B degraded"
	failSnapshots(t, ns, driverMsg)
	p := policy(t, ns, "hourly")
	r := newRig(t, ns, p.CreationTimestamp.Time)
	r.clock.SetTime(nextHour(p.CreationTimestamp.Time, 1))
	r.until("snapshot.failed", func() bool { return len(r.published(events.TypeSnapshotFailed)) > 0 })
	r.pass()
	failed := r.published(events.TypeSnapshotFailed)
	if len(failed) != 1 {
		t.Fatalf("%d snapshot.failed events, want 1", len(failed))
	}
	got := decode[events.SnapshotFailed](t, failed[0])
	if got.VolumeSnapshot == "" || got.PVC != "data" || got.Policy != "hourly" || !strings.Contains(got.Error, driverMsg) {
		t.Errorf("snapshot.failed %+v, want the driver's message %q", got, driverMsg)
	}
	if n := len(r.published(events.TypeSnapshotCompleted)); n != 0 {
		t.Errorf("%d snapshot.completed events for a failed snapshot", n)
	}
}

func TestPreHookFailure(t *testing.T) {
	ns := namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	appPod(t, ns, "data")
	p := policy(t, ns, "strict", withHooks(v1alpha1.Hook{
		Command: []string{"pg_backup_start"}, OnError: v1alpha1.OnErrorFail, Timeout: "5s",
	}))
	r := newRig(t, ns, p.CreationTimestamp.Time)
	r.clock.SetTime(nextHour(p.CreationTimestamp.Time, 1))
	r.pass()
	r.pass()
	if got := r.snapshots(); len(got) != 0 {
		t.Fatalf("snapshots %v taken although the pre hook failed", names(got))
	}
	failed := r.published(events.TypeSnapshotFailed)
	if len(failed) != 1 {
		t.Fatalf("%d snapshot.failed events, want 1", len(failed))
	}
	got := decode[events.SnapshotFailed](t, failed[0])
	if got.PVC != "data" || got.Policy != "strict" || !strings.Contains(got.Error, "hook failed") || !strings.Contains(got.Error, "pg_backup_start") {
		t.Errorf("snapshot.failed %+v", got)
	}
	var stored v1alpha1.SnapshotPolicy
	if err := kc.Get(t.Context(), client.ObjectKeyFromObject(p), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Status.LastResult != v1alpha1.ResultFailed {
		t.Errorf("last result %q, want %q", stored.Status.LastResult, v1alpha1.ResultFailed)
	}
}

// TestInvalidScheduleSetsCondition stores a schedule of the right shape
// (five fields, which is what the API server checks) with a minute out of
// range, which only the cron parser finds.
func TestInvalidScheduleSetsCondition(t *testing.T) {
	ns := namespace(t)
	p := &v1alpha1.SnapshotPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"},
		Spec:       v1alpha1.SnapshotPolicySpec{Schedule: "61 * * * *"},
	}
	create(t, p)
	r := newRig(t, ns, p.CreationTimestamp.Time)
	r.pass()
	var stored v1alpha1.SnapshotPolicy
	if err := kc.Get(t.Context(), client.ObjectKeyFromObject(p), &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Status.Conditions) != 1 || stored.Status.Conditions[0].Reason != "InvalidSchedule" || stored.Status.Conditions[0].Status != metav1.ConditionFalse {
		t.Errorf("conditions %+v", stored.Status.Conditions)
	}
}
