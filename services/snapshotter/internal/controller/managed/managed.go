package managed

import (
	"encoding/json"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
	"github.com/stateguard/stateguard/services/snapshotter/internal/retention"
)

// Values of v1alpha1.AnnotationReported.
const (
	ReportedCompleted = "completed"
	ReportedFailed    = "failed"
)

// Slot is the schedule slot vs was taken for, or nil (an on-demand or
// foreign snapshot).
func Slot(vs *snapv1.VolumeSnapshot) *time.Time {
	t, err := time.Parse(time.RFC3339, vs.Annotations[v1alpha1.AnnotationSlot])
	if err != nil {
		return nil
	}
	return &t
}

// Claim is the PersistentVolumeClaim vs is a snapshot of.
func Claim(vs *snapv1.VolumeSnapshot) string {
	if c := vs.Spec.Source.PersistentVolumeClaimName; c != nil {
		return *c
	}
	return vs.Labels[v1alpha1.LabelPVC]
}

// TakenAt is the time retention buckets a snapshot by, in UTC: its schedule slot,
// else status.creationTime, else the object's creation.
func TakenAt(vs *snapv1.VolumeSnapshot) time.Time {
	if slot := Slot(vs); slot != nil {
		return slot.UTC()
	}
	return CreationTime(vs)
}

// CreationTime is the snapshot's time in events (snapshot.completed's
// creation_time, restore.completed's snapshot_time): status.creationTime,
// when the data was cut, else the object's creation; in UTC.
func CreationTime(vs *snapv1.VolumeSnapshot) time.Time {
	if vs.Status != nil && vs.Status.CreationTime != nil {
		return vs.Status.CreationTime.UTC()
	}
	return vs.CreationTimestamp.UTC()
}

// State is vs as the retention planner sees it. A failed snapshot counts as
// pending until its failure was reported.
func State(vs *snapv1.VolumeSnapshot) retention.State {
	switch {
	case vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse:
		return retention.Ready
	case vs.Status != nil && vs.Status.Error != nil && vs.Annotations[v1alpha1.AnnotationReported] != "":
		return retention.Failed
	default:
		return retention.Pending
	}
}

// finding is the encryption finding as stored in
// v1alpha1.AnnotationEncryption.
type finding struct {
	Status   string   `json:"status"`
	Evidence []string `json:"evidence"`
}

// EncryptionAnnotation is f as stored on the VolumeSnapshot when it is
// created, read back by Encryption when it is reported.
func EncryptionAnnotation(f encryption.Finding) string {
	b, _ := json.Marshal(finding{f.Status, f.Evidence}) // strings only: cannot fail
	return string(b)
}

// Encryption reads EncryptionAnnotation back; a snapshot created before the
// check (or by hand) is unknown.
func Encryption(vs *snapv1.VolumeSnapshot) (status string, evidence []string) {
	raw := vs.Annotations[v1alpha1.AnnotationEncryption]
	var f finding
	if raw == "" || json.Unmarshal([]byte(raw), &f) != nil || f.Status == "" {
		return events.EncryptionUnknown, []string{"the snapshot carries no encryption finding (created before the snapshotter checked, or by hand)"}
	}
	return f.Status, f.Evidence
}
