package reporting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/managed"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
)

// Reporter announces settled snapshots.
type Reporter struct {
	Client    client.Client
	Events    events.Publisher
	Clock     clock.PassiveClock
	Log       *slog.Logger
	Metrics   *metrics.Metrics
	Namespace string // "" reports in every namespace
}

// Report publishes snapshot.completed or snapshot.failed for every managed
// snapshot that settled and was not reported yet (Due), then marks it
// reported. The event id derives from the snapshot's uid: after a crash
// between the publication and the mark, the next pass publishes again and
// JetStream drops the duplicate, so consumers see one event.
func (r *Reporter) Report(ctx context.Context) error {
	var list snapv1.VolumeSnapshotList
	if err := r.Client.List(ctx, &list, client.InNamespace(r.Namespace), client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}); err != nil {
		return fmt.Errorf("list volume snapshots: %w", err)
	}
	var errs []error
	for i := range list.Items {
		vs := &list.Items[i]
		var err error
		switch Due(vs) {
		case managed.ReportedCompleted:
			err = r.completed(ctx, vs)
		case managed.ReportedFailed:
			err = r.failed(ctx, vs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("report %s/%s: %w", vs.Namespace, vs.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Due is the rule of what to report about vs: managed.ReportedCompleted
// once it is ready to use, managed.ReportedFailed once it has an error, and
// "" while it is pending, once it was reported, while it is being deleted,
// and for a restore test's copy (a restore test reports snapshot.verified).
func Due(vs *snapv1.VolumeSnapshot) string {
	if vs.Annotations[v1alpha1.AnnotationReported] != "" || vs.Labels[v1alpha1.LabelRestoreTest] != "" || vs.DeletionTimestamp != nil || vs.Status == nil {
		return ""
	}
	switch {
	case vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse:
		return managed.ReportedCompleted
	case vs.Status.Error != nil:
		return managed.ReportedFailed
	}
	return ""
}

// Completed is the snapshot.completed payload of a ready vs; log learns of
// an unreadable workloads annotation (the event goes out without it).
func Completed(vs *snapv1.VolumeSnapshot, log *slog.Logger) events.SnapshotCompleted {
	payload := events.SnapshotCompleted{
		Namespace:      vs.Namespace,
		PVC:            managed.Claim(vs),
		VolumeSnapshot: vs.Name,
		Policy:         vs.Labels[v1alpha1.LabelPolicy],
		Slot:           managed.Slot(vs),
		CreationTime:   managed.CreationTime(vs),
		Workloads:      []events.VolumeWorkload{},
	}
	st := vs.Status
	if st.BoundVolumeSnapshotContentName != nil {
		payload.VolumeSnapshotContent = *st.BoundVolumeSnapshotContentName
	}
	if vs.Spec.VolumeSnapshotClassName != nil {
		payload.VolumeSnapshotClass = *vs.Spec.VolumeSnapshotClassName
	}
	if st.RestoreSize != nil {
		payload.RestoreSize = st.RestoreSize.String()
	}
	if raw := vs.Annotations[v1alpha1.AnnotationWorkloads]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &payload.Workloads); err != nil {
			log.Warn("unreadable workloads annotation", "namespace", vs.Namespace, "volume_snapshot", vs.Name, "error", err)
		}
	}
	payload.Encryption, payload.EncryptionEvidence = managed.Encryption(vs)
	return payload
}

func (r *Reporter) completed(ctx context.Context, vs *snapv1.VolumeSnapshot) error {
	payload := Completed(vs, r.Log)
	id, err := r.publish(ctx, vs, events.TypeSnapshotCompleted, "snapshot-completed-", payload, managed.ReportedCompleted)
	if err != nil {
		return err
	}
	r.Metrics.SnapshotCompleted(vs.Namespace, payload.Policy, vs.CreationTimestamp.Time, r.Clock.Now())
	r.Log.Info("snapshot completed", "namespace", vs.Namespace, "volume_snapshot", vs.Name, "event_id", id)
	return nil
}

func (r *Reporter) failed(ctx context.Context, vs *snapv1.VolumeSnapshot) error {
	msg := "snapshot failed"
	if m := vs.Status.Error.Message; m != nil {
		msg = *m
	}
	id, err := r.publish(ctx, vs, events.TypeSnapshotFailed, "snapshot-failed-", events.SnapshotFailed{
		Namespace: vs.Namespace, PVC: managed.Claim(vs), VolumeSnapshot: vs.Name,
		Policy: vs.Labels[v1alpha1.LabelPolicy], Slot: managed.Slot(vs), Error: msg,
	}, managed.ReportedFailed)
	if err != nil {
		return err
	}
	r.Metrics.SnapshotFailed(vs.Namespace, vs.Labels[v1alpha1.LabelPolicy])
	r.Log.Error("snapshot failed", "namespace", vs.Namespace, "volume_snapshot", vs.Name, "error", msg, "event_id", id)
	return nil
}

// publish publishes the event of type typ about vs (id prefix + vs's uid),
// then marks vs reported as value; it returns the event id.
func (r *Reporter) publish(ctx context.Context, vs *snapv1.VolumeSnapshot, typ, prefix string, payload any, value string) (string, error) {
	ev, err := r.Events.NewEvent(typ, prefix+string(vs.UID), payload)
	if err != nil {
		return "", err
	}
	if err := r.Events.Publish(ctx, ev); err != nil {
		return "", fmt.Errorf("publish: %w", err)
	}
	orig := vs.DeepCopy()
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	vs.Annotations[v1alpha1.AnnotationReported] = value
	if err := r.Client.Patch(ctx, vs, client.MergeFrom(orig)); err != nil {
		return "", fmt.Errorf("mark reported: %w", err)
	}
	return ev.ID(), nil
}
