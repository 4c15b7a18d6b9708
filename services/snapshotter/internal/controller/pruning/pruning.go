package pruning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/managed"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
	"github.com/stateguard/stateguard/services/snapshotter/internal/retention"
	"github.com/stateguard/stateguard/services/snapshotter/internal/schedule"
)

// Pruner deletes the snapshots a policy's retention drops.
type Pruner struct {
	Client  client.Client
	Clock   clock.PassiveClock
	Log     *slog.Logger
	Metrics *metrics.Metrics
}

// Prune applies rp to each of p's claims' snapshots (ByClaim), deleting
// what the plan drops and logging why.
func (r *Pruner) Prune(ctx context.Context, p *v1alpha1.SnapshotPolicy, rp retention.Policy) error {
	var list snapv1.VolumeSnapshotList
	if err := r.Client.List(ctx, &list, client.InNamespace(p.Namespace), client.MatchingLabels{
		v1alpha1.LabelManagedBy: v1alpha1.ManagedBy,
		v1alpha1.LabelPolicy:    schedule.LabelValue(p.Name),
	}); err != nil {
		return fmt.Errorf("list volume snapshots: %w", err)
	}
	byClaim, objs := ByClaim(list.Items)
	now := r.Clock.Now()
	var errs []error
	for pvc, snaps := range byClaim {
		plan := retention.Apply(rp, snaps, now)
		for _, d := range plan.Decisions {
			if d.Keep && d.Why&retention.KeepNewestReady != 0 {
				r.Metrics.NewestReadyAge.WithLabelValues(p.Namespace, pvc).Set(now.Sub(d.Snapshot.Time).Seconds())
			}
			if d.Keep {
				continue
			}
			if err := r.delete(ctx, p, pvc, objs[d.Snapshot.Name], d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ByClaim groups snapshots by claim as the retention planner sees them
// (managed.TakenAt, managed.State, the pinned label), leaving out those
// being deleted, and indexes the objects by name.
func ByClaim(items []snapv1.VolumeSnapshot) (map[string][]retention.Snapshot, map[string]*snapv1.VolumeSnapshot) {
	byClaim := map[string][]retention.Snapshot{}
	objs := map[string]*snapv1.VolumeSnapshot{}
	for i := range items {
		vs := &items[i]
		if vs.DeletionTimestamp != nil {
			continue
		}
		objs[vs.Name] = vs
		pvc := managed.Claim(vs)
		byClaim[pvc] = append(byClaim[pvc], retention.Snapshot{
			Name:   vs.Name,
			Time:   managed.TakenAt(vs),
			State:  managed.State(vs),
			Pinned: vs.Labels[v1alpha1.LabelPinned] == "true",
		})
	}
	return byClaim, objs
}

// delete deletes vs as the plan's decision d says, on the precondition
// that it is the object that was listed: one that changed since (for
// example was pinned) is left for the next pass to decide again.
func (r *Pruner) delete(ctx context.Context, p *v1alpha1.SnapshotPolicy, pvc string, vs *snapv1.VolumeSnapshot, d retention.Decision) error {
	if err := r.Client.Delete(ctx, vs, client.Preconditions{UID: &vs.UID, ResourceVersion: &vs.ResourceVersion}); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err):
			r.Log.Info("retention skipped a snapshot that changed since it was listed", "namespace", p.Namespace, "volume_snapshot", vs.Name)
			return nil
		}
		return fmt.Errorf("delete %s: %w", vs.Name, err)
	}
	r.Metrics.RetentionDeletions.WithLabelValues(p.Namespace, p.Name, d.Why.String()).Inc()
	r.Log.Info("retention deleted snapshot", "namespace", p.Namespace, "policy", p.Name, "pvc", pvc,
		"volume_snapshot", vs.Name, "taken_at", d.Snapshot.Time, "reason", d.Why.String())
	return nil
}
