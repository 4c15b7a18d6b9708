package manifests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// TestCorrelatorRulesMatchTheExample: kustomize cannot read files outside
// deploy/kustomize, so the base carries a copy of the correlator's
// config.example.yaml. The rendered ConfigMap must hold the same rules.
func TestCorrelatorRulesMatchTheExample(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, "services", "correlator", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(example, &want); err != nil {
		t.Fatal(err)
	}
	for _, overlay := range Overlays {
		o := generated(build(t, overlay), "ConfigMap", "correlator-config")
		if o == nil {
			t.Fatalf("%s: no correlator-config ConfigMap", overlay)
		}
		var got map[string]any
		if err := yaml.Unmarshal([]byte(convert[corev1.ConfigMap](t, o).Data["config.yaml"]), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: correlator rules differ from services/correlator/config.example.yaml; copy it to deploy/kustomize/base/correlator/config.yaml (-example +configmap):\n%s", overlay, diff)
		}
		if got["threshold"] != "high" || got["unknown_is_clean"] != false || got["keep_known_good"] != float64(1) || got["rotation_threshold"] != "7d" {
			t.Errorf("%s: shipped rules are not the documented defaults: %v", overlay, got)
		}
	}
}
