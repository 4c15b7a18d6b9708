package managed_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/managed"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
	"github.com/stateguard/stateguard/services/snapshotter/internal/retention"
)

func ptr[T any](v T) *T { return &v }

func TestTakenAtPrefersTheSlotThenTheSnapshotsCreation(t *testing.T) {
	// Read in a zone of its own (as metav1.Time decodes into the local
	// zone), the time comes out in UTC, as the events carry it.
	zone := time.FixedZone("UTC+2", 2*60*60)
	slot := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	created := slot.Add(3 * time.Minute).In(zone)
	object := slot.Add(time.Minute).In(zone)
	tests := []struct {
		name string
		vs   snapv1.VolumeSnapshot
		want time.Time
	}{
		{"the schedule slot wins", snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.AnnotationSlot: slot.Format(time.RFC3339)}, CreationTimestamp: metav1.NewTime(object)},
			Status:     &snapv1.VolumeSnapshotStatus{CreationTime: ptr(metav1.NewTime(created))},
		}, slot},
		{"without a slot, status.creationTime", snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(object)},
			Status:     &snapv1.VolumeSnapshotStatus{CreationTime: ptr(metav1.NewTime(created))},
		}, created},
		{"an unreadable slot and no status: the object's creation", snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.AnnotationSlot: "yesterday"}, CreationTimestamp: metav1.NewTime(object)},
		}, object},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := managed.TakenAt(&tt.vs); !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("TakenAt = %s, want %s in UTC", got, tt.want.UTC())
			}
		})
	}
}

func TestStateCountsAFailureOnlyOnceReported(t *testing.T) {
	failed := &snapv1.VolumeSnapshotStatus{Error: &snapv1.VolumeSnapshotError{Message: ptr("boom")}}
	tests := []struct {
		name string
		vs   snapv1.VolumeSnapshot
		want retention.State
	}{
		{"ready to use", snapv1.VolumeSnapshot{Status: &snapv1.VolumeSnapshotStatus{ReadyToUse: ptr(true)}}, retention.Ready},
		{"no status yet", snapv1.VolumeSnapshot{}, retention.Pending},
		{"failed, not reported yet: pending (kept until announced)", snapv1.VolumeSnapshot{Status: failed}, retention.Pending},
		{"failed and reported", snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.AnnotationReported: managed.ReportedFailed}},
			Status:     failed,
		}, retention.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := managed.State(&tt.vs); got != tt.want {
				t.Errorf("State = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClaimFallsBackToTheLabel(t *testing.T) {
	bySource := snapv1.VolumeSnapshot{Spec: snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr("data")}}}
	byLabel := snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{v1alpha1.LabelPVC: "logs"}}}
	if got := managed.Claim(&bySource); got != "data" {
		t.Errorf("Claim from the source = %q, want data", got)
	}
	if got := managed.Claim(&byLabel); got != "logs" {
		t.Errorf("Claim from the label = %q, want logs", got)
	}
}

func TestEncryptionAnnotationRoundTrips(t *testing.T) {
	f := encryption.Finding{Status: events.EncryptionEncrypted, Evidence: []string{"StorageClass fast: encrypted=true"}}
	vs := snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.AnnotationEncryption: managed.EncryptionAnnotation(f)}}}
	status, evidence := managed.Encryption(&vs)
	if diff := cmp.Diff([]any{f.Status, f.Evidence}, []any{status, evidence}); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	for _, raw := range []string{"", "{", `{"status":""}`} {
		vs.Annotations[v1alpha1.AnnotationEncryption] = raw
		if status, evidence := managed.Encryption(&vs); status != events.EncryptionUnknown || len(evidence) != 1 {
			t.Errorf("annotation %q read as %s %v, want unknown with one line of evidence", raw, status, evidence)
		}
	}
}
