package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// Values of AnnotationReported.
const (
	reportedCompleted = "completed"
	reportedFailed    = "failed"
)

// report publishes snapshot.completed or snapshot.failed for every managed
// snapshot that settled and was not reported yet, then marks it reported.
// The event id derives from the snapshot's uid: after a crash between the
// publication and the mark, the next pass publishes again and JetStream drops
// the duplicate, so consumers see one event.
func (c *Controller) report(ctx context.Context) error {
	var list snapv1.VolumeSnapshotList
	if err := c.Client.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}); err != nil {
		return fmt.Errorf("list volume snapshots: %w", err)
	}
	var errs []error
	for i := range list.Items {
		vs := &list.Items[i]
		if vs.Annotations[v1alpha1.AnnotationReported] != "" || vs.Labels[v1alpha1.LabelRestoreTest] != "" || vs.DeletionTimestamp != nil || vs.Status == nil {
			continue
		}
		var err error
		switch {
		case vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse:
			err = c.reportCompleted(ctx, vs)
		case vs.Status.Error != nil:
			err = c.reportFailed(ctx, vs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("report %s/%s: %w", vs.Namespace, vs.Name, err))
		}
	}
	return errors.Join(errs...)
}

func slotOf(vs *snapv1.VolumeSnapshot) *time.Time {
	t, err := time.Parse(time.RFC3339, vs.Annotations[v1alpha1.AnnotationSlot])
	if err != nil {
		return nil
	}
	return &t
}

func claimOf(vs *snapv1.VolumeSnapshot) string {
	if c := vs.Spec.Source.PersistentVolumeClaimName; c != nil {
		return *c
	}
	return vs.Labels[v1alpha1.LabelPVC]
}

func (c *Controller) reportCompleted(ctx context.Context, vs *snapv1.VolumeSnapshot) error {
	payload := events.SnapshotCompleted{
		Namespace:      vs.Namespace,
		PVC:            claimOf(vs),
		VolumeSnapshot: vs.Name,
		Policy:         vs.Labels[v1alpha1.LabelPolicy],
		Slot:           slotOf(vs),
		CreationTime:   vs.CreationTimestamp.UTC(),
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
	if st.CreationTime != nil {
		payload.CreationTime = st.CreationTime.UTC()
	}
	if raw := vs.Annotations[v1alpha1.AnnotationWorkloads]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &payload.Workloads); err != nil {
			c.Log.Warn("unreadable workloads annotation", "namespace", vs.Namespace, "volume_snapshot", vs.Name, "error", err)
		}
	}
	payload.Encryption, payload.EncryptionEvidence = encryptionFromAnnotation(vs)
	ev, err := c.Events.NewEvent(events.TypeSnapshotCompleted, "snapshot-completed-"+string(vs.UID), payload)
	if err != nil {
		return err
	}
	if err := c.Events.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err := c.markReported(ctx, vs, reportedCompleted); err != nil {
		return err
	}
	c.metrics().SnapshotCompleted(vs.Namespace, payload.Policy, vs.CreationTimestamp.Time, c.Clock.Now())
	c.Log.Info("snapshot completed", "namespace", vs.Namespace, "volume_snapshot", vs.Name, "event_id", ev.ID())
	return nil
}

func (c *Controller) reportFailed(ctx context.Context, vs *snapv1.VolumeSnapshot) error {
	msg := "snapshot failed"
	if m := vs.Status.Error.Message; m != nil {
		msg = *m
	}
	ev, err := c.Events.NewEvent(events.TypeSnapshotFailed, "snapshot-failed-"+string(vs.UID), events.SnapshotFailed{
		Namespace: vs.Namespace, PVC: claimOf(vs), VolumeSnapshot: vs.Name,
		Policy: vs.Labels[v1alpha1.LabelPolicy], Slot: slotOf(vs), Error: msg,
	})
	if err != nil {
		return err
	}
	if err := c.Events.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err := c.markReported(ctx, vs, reportedFailed); err != nil {
		return err
	}
	c.metrics().SnapshotFailed(vs.Namespace, vs.Labels[v1alpha1.LabelPolicy])
	c.Log.Error("snapshot failed", "namespace", vs.Namespace, "volume_snapshot", vs.Name, "error", msg, "event_id", ev.ID())
	return nil
}

func (c *Controller) markReported(ctx context.Context, vs *snapv1.VolumeSnapshot, value string) error {
	orig := vs.DeepCopy()
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	vs.Annotations[v1alpha1.AnnotationReported] = value
	if err := c.Client.Patch(ctx, vs, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("mark reported: %w", err)
	}
	return nil
}
