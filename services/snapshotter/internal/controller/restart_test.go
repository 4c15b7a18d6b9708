package controller_test

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// TestCrashBetweenCreateAndReady: one instance creates the snapshot and
// dies before it is ready; a new instance reports it once. Then a crash
// after publishing but before marking the snapshot reported: the next
// instance publishes again, and JetStream keeps one event.
func TestCrashBetweenCreateAndReady(t *testing.T) {
	ns := namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	release := holdSnapshots(t, ns)
	p := policy(t, ns, "hourly")
	r := newRig(t, ns, p.CreationTimestamp.Time)
	r.clock.SetTime(nextHour(p.CreationTimestamp.Time, 1))
	r.pass() // creates the snapshot; the CSI driver holds CreateSnapshot
	snaps := r.snapshots()
	if len(snaps) != 1 {
		t.Fatalf("snapshots %v, want 1", names(snaps))
	}
	r.ctrl = nil // crash

	vs := snaps[0]
	if vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse {
		t.Fatal("snapshot ready although the driver holds CreateSnapshot")
	}
	// The driver finishes while no snapshotter runs.
	release()

	r.ctrl = r.controller(r.events) // restart
	r.until("snapshot.completed", func() bool { return len(r.published(events.TypeSnapshotCompleted)) > 0 })

	// Crash after the publication, before the mark.
	if err := kc.Get(t.Context(), client.ObjectKeyFromObject(&vs), &vs); err != nil {
		t.Fatal(err)
	}
	orig := vs.DeepCopy()
	delete(vs.Annotations, v1alpha1.AnnotationReported)
	if err := kc.Patch(t.Context(), &vs, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	r.ctrl = r.controller(r.events)
	r.until("the snapshot marked reported again", func() bool {
		if err := kc.Get(t.Context(), client.ObjectKeyFromObject(&vs), &vs); err != nil {
			t.Fatal(err)
		}
		return vs.Annotations[v1alpha1.AnnotationReported] != ""
	})
	r.pass()
	if got := r.published(events.TypeSnapshotCompleted); len(got) != 1 {
		t.Fatalf("%d snapshot.completed events after two restarts, want exactly 1", len(got))
	}
	if got := r.snapshots(); len(got) != 1 {
		t.Fatalf("snapshots %v after restarts, want 1", names(got))
	}
}
