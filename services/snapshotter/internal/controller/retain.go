package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/retention"
	"github.com/stateguard/stateguard/services/snapshotter/internal/schedule"
)

// snapshotTime is the time retention buckets a snapshot by: its schedule
// slot, else status.creationTime, else the object's creation.
func snapshotTime(vs *snapv1.VolumeSnapshot) time.Time {
	if slot := slotOf(vs); slot != nil {
		return *slot
	}
	if vs.Status != nil && vs.Status.CreationTime != nil {
		return vs.Status.CreationTime.Time
	}
	return vs.CreationTimestamp.Time
}

// retentionState maps a snapshot to the planner's state. A failed snapshot
// counts as pending until its failure was reported.
func retentionState(vs *snapv1.VolumeSnapshot) retention.State {
	switch {
	case vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse:
		return retention.Ready
	case vs.Status != nil && vs.Status.Error != nil && vs.Annotations[v1alpha1.AnnotationReported] != "":
		return retention.Failed
	default:
		return retention.Pending
	}
}

// retain applies the policy's retention rp to each PVC's snapshots, deleting
// what the plan drops and logging why.
func (c *Controller) retain(ctx context.Context, p *v1alpha1.SnapshotPolicy, rp retention.Policy) error {
	var list snapv1.VolumeSnapshotList
	if err := c.Client.List(ctx, &list, client.InNamespace(p.Namespace), client.MatchingLabels{
		v1alpha1.LabelManagedBy: v1alpha1.ManagedBy,
		v1alpha1.LabelPolicy:    schedule.LabelValue(p.Name),
	}); err != nil {
		return fmt.Errorf("list volume snapshots: %w", err)
	}
	byPVC := map[string][]retention.Snapshot{}
	objs := map[string]*snapv1.VolumeSnapshot{}
	for i := range list.Items {
		vs := &list.Items[i]
		if vs.DeletionTimestamp != nil {
			continue
		}
		objs[vs.Name] = vs
		pvc := claimOf(vs)
		byPVC[pvc] = append(byPVC[pvc], retention.Snapshot{
			Name:   vs.Name,
			Time:   snapshotTime(vs),
			State:  retentionState(vs),
			Pinned: vs.Labels[v1alpha1.LabelPinned] == "true",
		})
	}
	now := c.Clock.Now()
	var errs []error
	for pvc, snaps := range byPVC {
		plan := retention.Apply(rp, snaps, now)
		for _, d := range plan.Decisions {
			if d.Keep && d.Why&retention.KeepNewestReady != 0 {
				c.metrics().NewestReadyAge.WithLabelValues(p.Namespace, pvc).Set(now.Sub(d.Snapshot.Time).Seconds())
			}
			if d.Keep {
				continue
			}
			vs := objs[d.Snapshot.Name]
			if err := c.Client.Delete(ctx, vs, client.Preconditions{UID: &vs.UID, ResourceVersion: &vs.ResourceVersion}); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				if apierrors.IsConflict(err) {
					c.Log.Info("retention skipped a snapshot that changed since it was listed", "namespace", p.Namespace, "volume_snapshot", vs.Name)
					continue
				}
				// A conflict means the snapshot changed (for example it was
				// pinned) since it was listed: the next pass decides again.
				errs = append(errs, fmt.Errorf("delete %s: %w", vs.Name, err))
				continue
			}
			c.metrics().RetentionDeletions.WithLabelValues(p.Namespace, p.Name, d.Why.String()).Inc()
			c.Log.Info("retention deleted snapshot", "namespace", p.Namespace, "policy", p.Name, "pvc", pvc,
				"volume_snapshot", vs.Name, "taken_at", d.Snapshot.Time, "reason", d.Why.String())
		}
	}
	return errors.Join(errs...)
}
