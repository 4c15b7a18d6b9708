package restore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/managed"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/reporting"
	"github.com/stateguard/stateguard/services/snapshotter/internal/pins"
	"github.com/stateguard/stateguard/services/snapshotter/internal/restore"
)

// TestSafetySnapshotPinExpires restores a claim with a safety snapshot TTL
// of an hour, then moves a clock: the snapshot stays before the expiry,
// stays after it while a pin request pins it, and is deleted once an unpin
// request released it.
func TestSafetySnapshotPinExpires(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	deployment(t, ns)
	stop := executor(t, ns, ec)
	if err := kc.Create(t.Context(), newRestore(ns, "r1", func(r *v1alpha1.Restore) { r.Spec.SafetySnapshotTTL = "1h" })); err != nil {
		t.Fatal(err)
	}
	r := ended(t, ns, "r1")
	if r.Status.Phase != v1alpha1.RestoreCompleted || r.Status.SafetySnapshot == "" {
		t.Fatalf("restore %s (%s), safety snapshot %q", r.Status.Phase, r.Status.Message, r.Status.SafetySnapshot)
	}
	stop()
	checkSafetyWorkloads(t, ns, r.Status.SafetySnapshot)
	// A policy's snapshot of the claim (managed by the snapshotter, no
	// Restore label): the expiry is none of its business.
	var policySnap snapv1.VolumeSnapshot
	if err := kc.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "known-good"}, &policySnap); err != nil {
		t.Fatal(err)
	}
	policySnap.Labels = map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelPolicy: "frequent"}
	if err := kc.Update(t.Context(), &policySnap); err != nil {
		t.Fatal(err)
	}

	// From here one pass at a time, on a clock the test moves.
	clk := clocktesting.NewFakeClock(r.Status.CompletionTime.Time)
	e := newExecutor(t, ns, ec, clk)
	e.SafetySnapshotTTL = 7 * 24 * time.Hour // the spec's hour wins
	pass := func() {
		t.Helper()
		if _, err := e.Reconcile(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// safety reads the safety snapshot; one being deleted (the
	// snapshot-controller's finalizers hold it a while) is not kept.
	safety := func() (*snapv1.VolumeSnapshot, error) {
		var vs snapv1.VolumeSnapshot
		err := kc.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: r.Status.SafetySnapshot}, &vs)
		if err == nil && vs.DeletionTimestamp != nil {
			err = fmt.Errorf("volume snapshot %s is being deleted", vs.Name)
		}
		return &vs, err
	}
	pass()
	wantExpiry := r.Status.CompletionTime.Add(time.Hour).UTC()
	if err := kc.Get(t.Context(), client.ObjectKeyFromObject(r), r); err != nil {
		t.Fatal(err)
	}
	if r.Status.SafetySnapshotExpiresAt == nil || !r.Status.SafetySnapshotExpiresAt.Time.Equal(wantExpiry) {
		t.Fatalf("status.safetySnapshotExpiresAt %v, want %v (the end plus the spec's TTL)", r.Status.SafetySnapshotExpiresAt, wantExpiry)
	}
	// A status write lost after the annotation's (a conflict with the
	// Restore's last phase write) is made again from the annotation.
	r.Status.SafetySnapshotExpiresAt = nil
	if err := kc.Status().Update(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	pass()
	if err := kc.Get(t.Context(), client.ObjectKeyFromObject(r), r); err != nil {
		t.Fatal(err)
	}
	if r.Status.SafetySnapshotExpiresAt == nil || !r.Status.SafetySnapshotExpiresAt.Time.Equal(wantExpiry) {
		t.Fatalf("after a lost status write: status.safetySnapshotExpiresAt %v, want %v (from the snapshot's annotation)", r.Status.SafetySnapshotExpiresAt, wantExpiry)
	}
	vs, err := safety()
	if err != nil {
		t.Fatal(err)
	}
	if vs.Annotations[restore.AnnotationExpiresAt] != wantExpiry.Format(time.RFC3339) {
		t.Errorf("snapshot annotation %s = %q, want %s", restore.AnnotationExpiresAt, vs.Annotations[restore.AnnotationExpiresAt], wantExpiry.Format(time.RFC3339))
	}

	clk.SetTime(wantExpiry.Add(-time.Minute))
	pass()
	if _, err := safety(); err != nil {
		t.Fatalf("before its expiry: %v", err)
	}

	// The correlator pins it (a known-good, say): kept past the expiry.
	h := &pins.Handler{Client: kc, Log: discard}
	pin := func(typ string, at time.Time, payload any) {
		t.Helper()
		ev := events.MustNewEvent(typ, "/test", typ+at.String(), payload)
		ev.SetTime(at)
		if err := h.Handle(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	pin(events.TypeSnapshotPinRequested, wantExpiry.Add(-30*time.Second), events.SnapshotPinRequested{Namespace: ns, VolumeSnapshot: vs.Name, Reason: "known-good of incident inc-9"})
	clk.SetTime(wantExpiry.Add(time.Hour))
	pass()
	if _, err := safety(); err != nil {
		t.Fatalf("pinned by a request after its expiry: %v", err)
	}

	// Unpinned: the next pass deletes it.
	pin(events.TypeSnapshotUnpinRequested, wantExpiry.Add(time.Minute), events.SnapshotUnpinRequested{Namespace: ns, VolumeSnapshot: vs.Name, Reason: "incident closed"})
	pass()
	eventually(t, "the safety snapshot deleted", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := safety()
		return apierrors.IsNotFound(err) || (err != nil && strings.Contains(err.Error(), "being deleted")), nil
	})
	if err := kc.Get(t.Context(), client.ObjectKeyFromObject(&policySnap), &policySnap); err != nil {
		t.Fatalf("the policy's snapshot: %v", err)
	}
	if v, ok := policySnap.Annotations[restore.AnnotationExpiresAt]; ok {
		t.Errorf("the policy's snapshot got %s=%s", restore.AnnotationExpiresAt, v)
	}
	kev := kubeEvents(t, ns, "r1", "SafetySnapshotPinned", "SafetySnapshotDeleted")
	t.Logf("events: %s; %s", kev["SafetySnapshotPinned"], kev["SafetySnapshotDeleted"])
}

// checkSafetyWorkloads checks the snapshot.completed the snapshotter
// reports for safety snapshot name: it names the pods of Deployment shop,
// which mounted the claim when the snapshot was cut (before the
// scale-down). Without them the correlator reads the snapshot as a sample
// where nothing runs, from a time the workloads still wrote to the claim.
func checkSafetyWorkloads(t *testing.T, ns, name string) {
	t.Helper()
	var vs snapv1.VolumeSnapshot
	if err := kc.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &vs); err != nil {
		t.Fatal(err)
	}
	if due := reporting.Due(&vs); due != managed.ReportedCompleted {
		t.Fatalf("safety snapshot %s is due as %q, want %q (nothing reports it in this test)", name, due, managed.ReportedCompleted)
	}
	got := reporting.Completed(&vs, discard).Workloads
	var pods []string
	for _, w := range got {
		if w.Owner == nil || w.Owner.Kind != "Deployment" || w.Owner.Name != "shop" || len(w.Containers) != 1 || w.Containers[0].Image != "ghcr.io/acme/db:1.0.0" {
			t.Errorf("safety snapshot %s names workload %+v, want a pod of Deployment shop running ghcr.io/acme/db:1.0.0", name, w)
		}
		pods = append(pods, w.Pod)
	}
	if len(pods) != 2 {
		t.Errorf("safety snapshot %s's snapshot.completed names pods %v, want the deployment's 2 replicas", name, pods)
	}
}
