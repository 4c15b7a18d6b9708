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
	// PVC is the claim that was snapshotted: the claim restored in place.
	PVC string
	// RestoreSize is the snapshot's status.restoreSize (for example 10Gi);
	// empty falls back to 1Gi and a step tells the operator to check it.
	RestoreSize      string
	StorageClassName string
	AccessModes      []string
	// Labels are the source claim's labels: the restored claim keeps them,
	// so the policies that selected it still do.
	Labels map[string]string
	// Workloads are the objects that mounted the PVC (Deployment,
	// StatefulSet, …).
	Workloads []events.ObjectRef
}

// Plan is a restore plan: one Restore to apply, or the same steps by hand.
type Plan struct {
	// NewPVC is the name of the claim the manifest creates: the source
	// claim's own name (the restore is in place, as a Restore does it).
	NewPVC string `json:"new_pvc"`
	// Restore is a Restore (stateguard.io/v1alpha1) ready for `kubectl
	// apply -f`: the snapshotter then carries the steps out, with a
	// safety snapshot first and a rollback on failure.
	Restore string `json:"restore"`
	// Manifest is the replacement claim, ready for `kubectl apply -f`
	// once the old claim is deleted (step by step, by hand).
	Manifest string `json:"manifest"`
	// Steps are the manual fallback, in the order the Restore executor
	// takes them.
	Steps []string `json:"steps"`
}

// For builds the plan for s: the same snapshot always yields the same
// plan.
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
	labels := map[string]any{}
	for k, v := range s.Labels {
		labels[k] = v
	}
	labels["stateguard.io/restored-from"] = truncateLabel(s.VolumeSnapshot)
	pvc := map[string]any{
		"apiVersion": "v1",
		"kind":       "PersistentVolumeClaim",
		"metadata": map[string]any{
			"name":      s.PVC,
			"namespace": s.Namespace,
			"labels":    labels,
			"annotations": map[string]any{
				"stateguard.io/restored-from-snapshot": s.VolumeSnapshot,
			},
		},
		"spec": spec,
	}
	claim, err := yaml.Marshal(pvc)
	if err != nil {
		return Plan{}, fmt.Errorf("restore plan: %w", err)
	}
	restore, err := yaml.Marshal(map[string]any{
		"apiVersion": "stateguard.io/v1alpha1",
		"kind":       "Restore",
		"metadata":   map[string]any{"name": restoreName(s.PVC, s.VolumeSnapshot), "namespace": s.Namespace},
		"spec":       map[string]any{"volumeSnapshot": s.VolumeSnapshot, "pvc": s.PVC},
	})
	if err != nil {
		return Plan{}, fmt.Errorf("restore plan: %w", err)
	}
	return Plan{NewPVC: s.PVC, Restore: string(restore), Manifest: string(claim), Steps: steps(s)}, nil
}

// steps are the manual fallback of a Restore, in its order: safety
// snapshot, workloads down, old volume kept, claim replaced, workloads up.
func steps(s Snapshot) []string {
	ns, pvc := s.Namespace, s.PVC
	var scalable []events.ObjectRef
	for _, w := range s.Workloads {
		if k := strings.ToLower(w.Kind); k != "" && k != "pod" {
			scalable = append(scalable, w)
		}
	}
	out := []string{
		"prefer one step: kubectl apply -f restore.yaml (the Restore above; the snapshotter does what follows and rolls back on failure). By hand:",
		fmt.Sprintf("take a safety snapshot of claim %s/%s (a VolumeSnapshot with spec.source.persistentVolumeClaimName: %s) and wait until it is readyToUse", ns, pvc, pvc),
	}
	for _, w := range scalable {
		out = append(out, fmt.Sprintf("note the replicas of %s/%s, then: kubectl -n %s scale %s/%s --replicas=0", strings.ToLower(w.Kind), w.Name, w.Namespace, strings.ToLower(w.Kind), w.Name))
	}
	if len(scalable) == 0 {
		out = append(out, fmt.Sprintf("stop the workload that uses claim %s", pvc))
	}
	out = append(out,
		fmt.Sprintf("wait until no pod mounts claim %s", pvc),
		fmt.Sprintf(`kubectl patch pv "$(kubectl -n %s get pvc %s -o jsonpath='{.spec.volumeName}')" -p '{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}'   # keep the old volume`, ns, pvc),
		fmt.Sprintf("kubectl -n %s delete pvc %s", ns, pvc),
		fmt.Sprintf("kubectl apply -f restore-claim.yaml   # the claim %s/%s again, from VolumeSnapshot %s (the manifest)", ns, pvc, s.VolumeSnapshot),
		fmt.Sprintf("kubectl -n %s wait --for=jsonpath='{.status.phase}'=Bound pvc/%s --timeout=10m", ns, pvc),
	)
	if s.RestoreSize == "" {
		out = append(out, "check the requested storage: the snapshot reported no restoreSize, 1Gi was assumed")
	}
	for _, w := range scalable {
		out = append(out, fmt.Sprintf("kubectl -n %s scale %s/%s --replicas=<noted>; kubectl -n %s rollout status %s/%s", w.Namespace, strings.ToLower(w.Kind), w.Name, w.Namespace, strings.ToLower(w.Kind), w.Name))
	}
	if len(scalable) == 0 {
		out = append(out, fmt.Sprintf("start the workload that uses claim %s again", pvc))
	}
	return out
}

// restoreName is restore-<pvc>-<hash of snapshot>, within the 63
// characters of a label value.
func restoreName(pvc, snapshot string) string {
	sum := sha256.Sum256([]byte(snapshot))
	suffix := "-" + hex.EncodeToString(sum[:])[:8]
	name := "restore-" + pvc
	if len(name)+len(suffix) > 63 {
		name = strings.TrimRight(name[:63-len(suffix)], "-.")
	}
	return name + suffix
}

func truncateLabel(s string) string {
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimRight(s, "-_.")
}
