package reporting_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/managed"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/reporting"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
)

func ptr[T any](v T) *T { return &v }

func TestDueReportsEachSettledSnapshotOnce(t *testing.T) {
	ready := &snapv1.VolumeSnapshotStatus{ReadyToUse: ptr(true)}
	failed := &snapv1.VolumeSnapshotStatus{Error: &snapv1.VolumeSnapshotError{Message: ptr("driver said no")}}
	now := metav1.Now()
	tests := []struct {
		name string
		meta metav1.ObjectMeta
		st   *snapv1.VolumeSnapshotStatus
		want string
	}{
		{"ready: completed", metav1.ObjectMeta{}, ready, managed.ReportedCompleted},
		{"failed: failed", metav1.ObjectMeta{}, failed, managed.ReportedFailed},
		{"no status yet: nothing", metav1.ObjectMeta{}, nil, ""},
		{"pending: nothing", metav1.ObjectMeta{}, &snapv1.VolumeSnapshotStatus{ReadyToUse: ptr(false)}, ""},
		{"already reported: nothing", metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.AnnotationReported: managed.ReportedCompleted}}, ready, ""},
		{"a restore test's copy: nothing (the test reports verified)", metav1.ObjectMeta{Labels: map[string]string{v1alpha1.LabelRestoreTest: "t"}}, ready, ""},
		{"being deleted: nothing", metav1.ObjectMeta{DeletionTimestamp: &now}, ready, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := snapv1.VolumeSnapshot{ObjectMeta: tt.meta, Status: tt.st}
			if got := reporting.Due(&vs); got != tt.want {
				t.Errorf("Due = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCompletedCarriesWhatTheSnapshotRecorded(t *testing.T) {
	slot := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	created := slot.Add(2 * time.Minute)
	f := encryption.Finding{Status: events.EncryptionEncrypted, Evidence: []string{"StorageClass fast: encrypted=true"}}
	vs := snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: "hourly-data-202612070600",
			Labels: map[string]string{v1alpha1.LabelPolicy: "hourly"},
			Annotations: map[string]string{
				v1alpha1.AnnotationSlot:       slot.Format(time.RFC3339),
				v1alpha1.AnnotationWorkloads:  `[{"pod":"db-0","app":"db","containers":[]}]`,
				v1alpha1.AnnotationEncryption: managed.EncryptionAnnotation(f),
			},
		},
		Spec: snapv1.VolumeSnapshotSpec{
			Source:                  snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr("data")},
			VolumeSnapshotClassName: ptr("csi"),
		},
		Status: &snapv1.VolumeSnapshotStatus{
			ReadyToUse: ptr(true), BoundVolumeSnapshotContentName: ptr("snapcontent-1"),
			RestoreSize: ptr(resource.MustParse("1Gi")), CreationTime: ptr(metav1.NewTime(created)),
		},
	}
	want := events.SnapshotCompleted{
		Namespace: "shop", PVC: "data", VolumeSnapshot: vs.Name, Policy: "hourly", Slot: &slot,
		CreationTime: created, VolumeSnapshotContent: "snapcontent-1", VolumeSnapshotClass: "csi", RestoreSize: "1Gi",
		Workloads:  []events.VolumeWorkload{{Pod: "db-0", App: "db", Containers: []events.Container{}}},
		Encryption: f.Status, EncryptionEvidence: f.Evidence,
	}
	got := reporting.Completed(&vs, slog.New(slog.DiscardHandler))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
}
