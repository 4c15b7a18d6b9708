package controller_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

func names(s []snapv1.VolumeSnapshot) []string {
	out := []string{}
	for _, v := range s {
		out = append(out, v.Name)
	}
	return out
}

func TestRetentionKeepsPinnedAndNewestReady(t *testing.T) {
	ns := namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	// maxAge of a minute would delete every snapshot; the pinned one and
	// the newest ready one must survive it.
	p := policy(t, ns, "hourly", withRetention(v1alpha1.Retention{KeepLast: 10, MaxAge: "1m"}))
	r := newRig(t, ns, p.CreationTimestamp.Time)
	var taken []string
	for h := 1; h <= 3; h++ {
		r.clock.SetTime(nextHour(p.CreationTimestamp.Time, h))
		want := h
		r.until("snapshot.completed", func() bool { return len(r.published(events.TypeSnapshotCompleted)) >= want })
		if h == 1 {
			first := r.snapshots()[0]
			taken = append(taken, first.Name)
			orig := first.DeepCopy()
			first.Labels[v1alpha1.LabelPinned] = "true"
			if err := kc.Patch(t.Context(), &first, client.MergeFrom(orig)); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.pass()
	slot3 := r.clock.Now().Truncate(time.Hour).UTC()
	want := []string{taken[0], "hourly-data-" + slot3.Format("200601021504")}
	if diff := cmp.Diff(want, names(r.snapshots())); diff != "" {
		t.Errorf("snapshots left (-want +got):\n%s", diff)
	}
}
