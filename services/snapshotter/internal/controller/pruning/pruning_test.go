package pruning_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/pruning"
	"github.com/stateguard/stateguard/services/snapshotter/internal/retention"
)

func ptr[T any](v T) *T { return &v }

func TestByClaimGroupsWhatRetentionMayDecide(t *testing.T) {
	at := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	now := metav1.Now()
	snap := func(name, pvc string, labels map[string]string, ready bool, deleting bool) snapv1.VolumeSnapshot {
		vs := snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, CreationTimestamp: metav1.NewTime(at)},
			Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr(pvc)}},
			Status:     &snapv1.VolumeSnapshotStatus{ReadyToUse: ptr(ready)},
		}
		if deleting {
			vs.DeletionTimestamp = &now
		}
		return vs
	}
	items := []snapv1.VolumeSnapshot{
		snap("a1", "a", nil, true, false),
		snap("a2", "a", map[string]string{v1alpha1.LabelPinned: "true"}, false, false),
		snap("b1", "b", nil, true, false),
		snap("b2", "b", nil, true, true),
	}
	byClaim, objs := pruning.ByClaim(items)
	want := map[string][]retention.Snapshot{
		"a": {{Name: "a1", Time: at, State: retention.Ready}, {Name: "a2", Time: at, State: retention.Pending, Pinned: true}},
		"b": {{Name: "b1", Time: at, State: retention.Ready}},
	}
	if diff := cmp.Diff(want, byClaim); diff != "" {
		t.Errorf("by claim (-want +got):\n%s", diff)
	}
	if _, ok := objs["b2"]; ok || len(objs) != 3 {
		t.Errorf("objects %v: want a1, a2, b1 (not the one being deleted)", objs)
	}
}
