package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/restoreplan"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/workload"
)

// ErrNotFound says the snapshot does not exist.
var ErrNotFound = errors.New("volume snapshot not found")

// For builds the restore plan of the VolumeSnapshot namespace/name. The
// storage class and access modes come from the snapshotted PVC when it still
// exists; the workloads to switch over are those recorded when the snapshot
// was taken, else the pods that mount the PVC now.
func For(ctx context.Context, c client.Reader, namespace, name string) (restoreplan.Plan, error) {
	var vs snapv1.VolumeSnapshot
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &vs); err != nil {
		if apierrors.IsNotFound(err) {
			return restoreplan.Plan{}, fmt.Errorf("%w: %s/%s", ErrNotFound, namespace, name)
		}
		return restoreplan.Plan{}, fmt.Errorf("get volume snapshot: %w", err)
	}
	s := restoreplan.Snapshot{Namespace: namespace, VolumeSnapshot: name}
	if p := vs.Spec.Source.PersistentVolumeClaimName; p != nil {
		s.PVC = *p
	} else {
		s.PVC = vs.Labels[v1alpha1.LabelPVC]
	}
	if vs.Status != nil && vs.Status.RestoreSize != nil {
		s.RestoreSize = vs.Status.RestoreSize.String()
	}
	var pvc corev1.PersistentVolumeClaim
	switch err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: s.PVC}, &pvc); {
	case err == nil:
		s.Labels = pvc.Labels
		if pvc.Spec.StorageClassName != nil {
			s.StorageClassName = *pvc.Spec.StorageClassName
		}
		for _, m := range pvc.Spec.AccessModes {
			s.AccessModes = append(s.AccessModes, string(m))
		}
		if s.RestoreSize == "" {
			if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
				s.RestoreSize = q.String()
			}
		}
	case !apierrors.IsNotFound(err):
		return restoreplan.Plan{}, fmt.Errorf("get pvc: %w", err)
	}
	var wls []events.VolumeWorkload
	if raw := vs.Annotations[v1alpha1.AnnotationWorkloads]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &wls) // an unreadable record falls back to the live pods
	}
	if len(wls) == 0 && s.PVC != "" {
		pods, err := workload.Pods(ctx, c, namespace, s.PVC)
		if err != nil {
			return restoreplan.Plan{}, err
		}
		if wls, err = workload.Describe(ctx, c, pods); err != nil {
			return restoreplan.Plan{}, err
		}
	}
	for _, w := range wls {
		ref := events.ObjectRef{Kind: "Pod", Namespace: namespace, Name: w.Pod}
		if w.Owner != nil {
			ref = *w.Owner
		}
		if !slices.Contains(s.Workloads, ref) {
			s.Workloads = append(s.Workloads, ref)
		}
	}
	return restoreplan.For(s)
}

// Handler serves GET /v1/restore-plan/{namespace}/{volumesnapshot} as JSON.
func Handler(c client.Reader, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns, name := r.PathValue("namespace"), r.PathValue("volumesnapshot")
		p, err := For(r.Context(), c, ns, name)
		switch {
		case errors.Is(err, ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case err != nil:
			log.Error("restore plan", "namespace", ns, "volume_snapshot", name, "error", err)
			http.Error(w, "restore plan failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p)
	})
}

// Route is the pattern Handler is served on.
const Route = "GET /v1/restore-plan/{namespace}/{volumesnapshot}"
