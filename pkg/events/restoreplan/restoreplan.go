package restoreplan

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/pkg/events"
)

// Snapshot describes what to restore.
type Snapshot struct {
	Namespace      string
	VolumeSnapshot string
	// PVC is the claim that was snapshotted.
	PVC string
	// RestoreSize is the snapshot's status.restoreSize (for example 10Gi);
	// empty falls back to 1Gi and a step tells the operator to check it.
	RestoreSize      string
	StorageClassName string
	AccessModes      []string
	// Workloads are the objects that mounted the PVC (Deployment,
	// StatefulSet, …).
	Workloads []events.ObjectRef
}

// Plan is a restore plan.
type Plan struct {
	// NewPVC is the name of the claim the manifest creates.
	NewPVC string `json:"new_pvc"`
	// Manifest is YAML ready for `kubectl apply -f`.
	Manifest string `json:"manifest"`
	// Steps say how to switch the workloads to the restored claim.
	Steps []string `json:"steps"`
}

// For builds the plan for s. The new claim's name is derived from the
// snapshot, so the same snapshot always yields the same plan.
func For(s Snapshot) (Plan, error) {
	if s.Namespace == "" || s.VolumeSnapshot == "" || s.PVC == "" {
		return Plan{}, errors.New("restore plan: namespace, volume snapshot and pvc are required")
	}
	size := s.RestoreSize
	if size == "" {
		size = "1Gi"
	}
	modes := s.AccessModes
	if len(modes) == 0 {
		modes = []string{"ReadWriteOnce"}
	}
	name := newName(s.PVC, s.VolumeSnapshot)
	spec := map[string]any{
		"accessModes": modes,
		"dataSource": map[string]any{
			"apiGroup": "snapshot.storage.k8s.io",
			"kind":     "VolumeSnapshot",
			"name":     s.VolumeSnapshot,
		},
		"resources": map[string]any{"requests": map[string]any{"storage": size}},
	}
	if s.StorageClassName != "" {
		spec["storageClassName"] = s.StorageClassName
	}
	pvc := map[string]any{
		"apiVersion": "v1",
		"kind":       "PersistentVolumeClaim",
		"metadata": map[string]any{
			"name":      name,
			"namespace": s.Namespace,
			"labels":    map[string]any{"app.kubernetes.io/managed-by": "stateguard", "stateguard.io/restored-from": truncateLabel(s.VolumeSnapshot)},
			"annotations": map[string]any{
				"stateguard.io/restored-from-pvc":      s.PVC,
				"stateguard.io/restored-from-snapshot": s.VolumeSnapshot,
			},
		},
		"spec": spec,
	}
	out, err := yaml.Marshal(pvc)
	if err != nil {
		return Plan{}, fmt.Errorf("restore plan: %w", err)
	}
	steps := []string{
		fmt.Sprintf("kubectl apply -f restore.yaml   # creates PVC %s/%s from VolumeSnapshot %s", s.Namespace, name, s.VolumeSnapshot),
		fmt.Sprintf("kubectl -n %s wait --for=jsonpath='{.status.phase}'=Bound pvc/%s --timeout=10m", s.Namespace, name),
	}
	if s.RestoreSize == "" {
		steps = append(steps, "check the requested storage: the snapshot reported no restoreSize, 1Gi was assumed")
	}
	for _, w := range s.Workloads {
		kind := strings.ToLower(w.Kind)
		if kind == "" || kind == "pod" {
			continue
		}
		steps = append(steps,
			fmt.Sprintf("kubectl -n %s scale %s/%s --replicas=0", w.Namespace, kind, w.Name),
			fmt.Sprintf("edit %s/%s: replace claimName %s with %s in its volumes (for a StatefulSet volumeClaimTemplate, restore into the claim name it expects instead)", kind, w.Name, s.PVC, name),
			fmt.Sprintf("kubectl -n %s scale %s/%s --replicas=<previous>", w.Namespace, kind, w.Name),
		)
	}
	if len(s.Workloads) == 0 {
		steps = append(steps, fmt.Sprintf("point the workload that used %s at %s and restart it", s.PVC, name))
	}
	return Plan{NewPVC: name, Manifest: string(out), Steps: steps}, nil
}

// newName is <pvc>-restore-<hash of snapshot>, within the 63-character
// limit of a DNS label.
func newName(pvc, snapshot string) string {
	sum := sha256.Sum256([]byte(snapshot))
	suffix := "-restore-" + hex.EncodeToString(sum[:])[:8]
	if len(pvc)+len(suffix) > 63 {
		pvc = pvc[:63-len(suffix)]
	}
	return pvc + suffix
}

func truncateLabel(s string) string {
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimRight(s, "-_.")
}
