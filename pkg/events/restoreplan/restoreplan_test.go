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

func TestNewNameFitsALabel(t *testing.T) {
	n := newName(strings.Repeat("p", 80), "snap")
	if len(n) > 63 {
		t.Errorf("name %q is %d long", n, len(n))
	}
}
