package discovery

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/stateguard/stateguard/pkg/events"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// TestCertManagerInstalledLater installs the Certificate CRD while
// discovery runs. cert-manager's own CRD is installed in this package's
// API server for the other tests, so this one serves the same CRD under
// another API group and points discovery at it.
func TestCertManagerInstalledLater(t *testing.T) {
	ns := namespace(t)
	ctx := t.Context()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	late := schema.GroupVersionResource{Group: "late.stateguard.test", Version: "v1", Resource: "certificates"}
	d, _, _ := startDiscovery(t, Options{Namespaces: []string{ns}, Dynamic: dyn, CertManagerRecheck: 100 * time.Millisecond, certificates: late})
	if d.CertManagerEnabled() {
		t.Fatal("Certificates watched before their CRD exists")
	}

	// cert-manager is installed: its Certificate CRD, in the test's group.
	orig, err := dyn.Resource(crdGVR).Get(ctx, "certificates.cert-manager.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": late.Resource + "." + late.Group},
		"spec":     orig.Object["spec"],
	}}
	if err := unstructured.SetNestedField(crd.Object, late.Group, "spec", "group"); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dyn.Resource(crdGVR).Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{})
	})
	eventually(t, "the new CRD detected", d.CertManagerEnabled)

	// A Certificate created now is known, with what its status says.
	notAfter := time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC)
	crt := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": late.GroupVersion().String(), "kind": "Certificate",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec": map[string]any{"secretName": "web-tls", "dnsNames": []any{"web.example"},
			"issuerRef": map[string]any{"name": "ca", "kind": "Issuer"}},
	}}
	var created *unstructured.Unstructured
	eventually(t, "a Certificate created", func() bool { // once the CRD is established
		created, err = dyn.Resource(late).Namespace(ns).Create(ctx, crt, metav1.CreateOptions{})
		return err == nil
	})
	_ = unstructured.SetNestedField(created.Object, notAfter.Format(time.RFC3339), "status", "notAfter")
	if _, err := dyn.Resource(late).Namespace(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := &events.CertManagerInfo{Certificate: "web", NotAfter: &notAfter}
	eventually(t, "the Certificate known", func() bool { return cmp.Equal(want, d.CertManager(ns, "web-tls")) })
	eventually(t, "its informer synced", d.HasSynced)
}
