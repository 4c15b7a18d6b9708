package restoreplan

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/pkg/events"
)

func TestForBuildsAPVCFromTheSnapshot(t *testing.T) {
	p, err := For(Snapshot{
		Namespace: "shop", VolumeSnapshot: "db-data-20260101", PVC: "db-data", RestoreSize: "5Gi",
		Workloads: []events.ObjectRef{{Kind: "StatefulSet", Namespace: "shop", Name: "db"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var pvc struct {
		Kind     string
		Metadata struct{ Name, Namespace string }
		Spec     struct {
			DataSource struct{ APIGroup, Kind, Name string } `json:"dataSource"`
			Resources  struct{ Requests map[string]string }
		}
	}
	if err := yaml.Unmarshal([]byte(p.Manifest), &pvc); err != nil {
		t.Fatalf("manifest is not YAML: %v", err)
	}
	if pvc.Kind != "PersistentVolumeClaim" || pvc.Metadata.Namespace != "shop" || pvc.Metadata.Name != p.NewPVC {
		t.Errorf("manifest object = %+v, want PVC shop/%s", pvc, p.NewPVC)
	}
	if ds := pvc.Spec.DataSource; ds.Kind != "VolumeSnapshot" || ds.Name != "db-data-20260101" || ds.APIGroup != "snapshot.storage.k8s.io" {
		t.Errorf("dataSource = %+v", ds)
	}
	if got := pvc.Spec.Resources.Requests["storage"]; got != "5Gi" {
		t.Errorf("storage = %q, want 5Gi", got)
	}
	if !strings.Contains(strings.Join(p.Steps, "\n"), "statefulset/db") {
		t.Errorf("steps do not switch the StatefulSet: %q", p.Steps)
	}
	if p.NewPVC != "db-data" {
		t.Errorf("new claim %q, want db-data: the restore is in place", p.NewPVC)
	}
	again, _ := For(Snapshot{Namespace: "shop", VolumeSnapshot: "db-data-20260101", PVC: "db-data", RestoreSize: "5Gi"})
	if again.NewPVC != p.NewPVC {
		t.Errorf("name not deterministic: %s vs %s", again.NewPVC, p.NewPVC)
	}
}

func TestForRejectsIncompleteInput(t *testing.T) {
	if _, err := For(Snapshot{Namespace: "shop"}); err == nil {
		t.Fatal("want an error for a snapshot without name and pvc")
	}
}

func TestRestoreNameFitsALabel(t *testing.T) {
	n := restoreName(strings.Repeat("p", 80), "snap")
	if len(n) > 63 {
		t.Errorf("name %q is %d long", n, len(n))
	}
}

// The plan keeps the source claim's labels and storage class, and its
// manual steps follow the executor's order: safety snapshot, scale down,
// retain the old volume, replace the claim, wait bound, scale up.
func TestPlanKeepsTheClaimAndFollowsTheExecutorsOrder(t *testing.T) {
	p, err := For(Snapshot{
		Namespace: "shop", VolumeSnapshot: "snap-1", PVC: "data", RestoreSize: "2Gi", StorageClassName: "fast",
		Labels:    map[string]string{"app": "db", "stateguard.io/protect": "true"},
		Workloads: []events.ObjectRef{{Kind: "Deployment", Namespace: "shop", Name: "api"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var pvc struct {
		Metadata struct {
			Name   string
			Labels map[string]string
		}
		Spec struct {
			StorageClassName string `json:"storageClassName"`
		}
	}
	if err := yaml.Unmarshal([]byte(p.Manifest), &pvc); err != nil {
		t.Fatal(err)
	}
	if pvc.Metadata.Name != "data" || pvc.Metadata.Labels["app"] != "db" || pvc.Metadata.Labels["stateguard.io/protect"] != "true" || pvc.Spec.StorageClassName != "fast" {
		t.Errorf("claim %+v, want data with the source's labels and class fast", pvc)
	}
	var r struct {
		Kind, APIVersion string
		Metadata         struct{ Name, Namespace string }
		Spec             struct{ VolumeSnapshot, PVC string }
	}
	if err := yaml.Unmarshal([]byte(p.Restore), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "Restore" || r.APIVersion != "stateguard.io/v1alpha1" || r.Metadata.Namespace != "shop" || r.Spec.VolumeSnapshot != "snap-1" || r.Spec.PVC != "data" {
		t.Errorf("restore %+v", r)
	}
	order := []string{"safety snapshot", "--replicas=0", "no pod mounts", "Retain", "delete pvc data", "apply -f restore-claim.yaml", "Bound", "--replicas=<noted>"}
	at := 0
	for _, want := range order {
		for at < len(p.Steps) && !strings.Contains(p.Steps[at], want) {
			at++
		}
		if at == len(p.Steps) {
			t.Fatalf("step %q missing or out of order in %q", want, p.Steps)
		}
	}
}
