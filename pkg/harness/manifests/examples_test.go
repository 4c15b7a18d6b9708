package manifests

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// TestExampleSnapshotPolicy applies the SnapshotPolicy the operator guide
// shows, as a server-side dry run with strict field validation, against the
// snapshotter's CRD: the documented example is one the cluster accepts.
func TestExampleSnapshotPolicy(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "kustomize", "examples", "snapshotpolicy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var o unstructured.Unstructured
	if err := yaml.Unmarshal(data, &o.Object); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.GetNamespace()}}
	if _, err := kube.Client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	a := newApplier(t)
	if err := a.apply(t.Context(), &o, true); err != nil {
		t.Fatalf("example SnapshotPolicy refused: %v", err)
	}
	// And a policy with a misspelt retention field is refused the same way.
	bad := o.DeepCopy()
	_ = unstructured.SetNestedField(bad.Object, int64(3), "spec", "retention", "keeplast")
	if err := a.apply(t.Context(), bad, true); err == nil {
		t.Error("a SnapshotPolicy with spec.retention.keeplast was accepted")
	}
}
