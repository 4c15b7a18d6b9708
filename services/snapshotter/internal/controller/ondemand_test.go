package controller_test

import (
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// request sets the policy's stateguard.io/snapshot-request annotation, as
// `stateguardctl snapshot create` does, and returns the value.
func request(t *testing.T, ns, name, value string) string {
	t.Helper()
	var p v1alpha1.SnapshotPolicy
	if err := kc.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	orig := p.DeepCopy()
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[v1alpha1.AnnotationSnapshotRequest] = value
	if err := kc.Patch(t.Context(), &p, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	return value
}

func lastRequest(t *testing.T, ns, name string) *v1alpha1.SnapshotRequestStatus {
	t.Helper()
	var p v1alpha1.SnapshotPolicy
	if err := kc.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	return p.Status.LastRequest
}

// TestOnDemandSnapshot on the real API server: a request on the policy is
// carried out like a slot at the request's time (labels, slot annotation,
// snapshot.completed once ready) and recorded in status.lastRequest; a
// value is carried out once, even after its snapshot is deleted; a PVC the
// policy does not select, a malformed value and a time in the future are
// refused with the reason in the status and no snapshot.
func TestOnDemandSnapshot(t *testing.T) {
	ns := namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	create(t, pvc(ns, "other", map[string]string{"app": "web"}))
	p := policy(t, ns, "hourly")
	start := p.CreationTimestamp.Time.Add(17 * time.Second) // between two hourly slots, with seconds
	r := newRig(t, ns, start)
	r.pass()
	if n := len(r.snapshots()); n != 0 {
		t.Fatalf("%d snapshots before any slot or request", n)
	}

	at := start.Add(-3 * time.Second).UTC()
	req := request(t, ns, "hourly", "data@"+at.Format(time.RFC3339))
	r.pass()
	want := "hourly-data-" + at.Format("20060102150405")
	lr := lastRequest(t, ns, "hourly")
	if lr == nil || lr.Request != req || lr.Snapshot != want || lr.Error != "" {
		t.Fatalf("status.lastRequest %+v, want %s carried out as %s", lr, req, want)
	}
	var vs snapv1.VolumeSnapshot
	if err := kc.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: want}, &vs); err != nil {
		t.Fatalf("the requested snapshot: %v", err)
	}
	if vs.Labels[v1alpha1.LabelPolicy] != "hourly" || vs.Labels[v1alpha1.LabelPVC] != "data" || vs.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedBy ||
		vs.Annotations[v1alpha1.AnnotationSlot] != at.Format(time.RFC3339) || *vs.Spec.Source.PersistentVolumeClaimName != "data" {
		t.Errorf("snapshot labels %v annotations %v, want those of a slot of hourly at %s", vs.Labels, vs.Annotations, at)
	}
	r.until("snapshot.completed of the requested snapshot", func() bool {
		for _, ev := range r.published(events.TypeSnapshotCompleted) {
			sc, err := events.Decode[events.SnapshotCompleted](ev)
			if err == nil && sc.VolumeSnapshot == want {
				return true
			}
		}
		return false
	})

	// Once per value: neither another pass nor the snapshot's deletion
	// (retention, an operator) takes it again.
	r.pass()
	if err := kc.Delete(t.Context(), &vs); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the snapshot deleted", func() bool {
		return len(r.snapshots()) == 0
	})
	r.pass()
	r.pass()
	if got := r.snapshots(); len(got) != 0 {
		t.Fatalf("%d snapshots after the request's snapshot was deleted, want 0: a request is carried out once", len(got))
	}

	for _, tt := range []struct{ name, value, wantErr string }{
		{"a PVC the policy does not select", "other@" + at.Format(time.RFC3339), "not selected by the policy's pvcSelector"},
		{"a PVC that does not exist", "gone@" + at.Format(time.RFC3339), "does not exist"},
		{"a value without a time", "data", "want <pvc>@<RFC 3339 time>"},
		{"a time in the future", "data@" + start.Add(time.Hour).UTC().Format(time.RFC3339), "after now"},
	} {
		req := request(t, ns, "hourly", tt.value)
		r.pass()
		lr := lastRequest(t, ns, "hourly")
		if lr == nil || lr.Request != req || lr.Snapshot != "" || !strings.Contains(lr.Error, tt.wantErr) {
			t.Errorf("%s: status.lastRequest %+v, want refused with %q", tt.name, lr, tt.wantErr)
		}
		if got := r.snapshots(); len(got) != 0 {
			t.Errorf("%s: %d snapshots taken", tt.name, len(got))
		}
	}
}
