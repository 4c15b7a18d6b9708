package kubetest

import (
	"testing"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestControlPlaneServesVolumeSnapshots(t *testing.T) {
	env := Start(t)
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubetest"}}
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	sc, err := snapclient.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "data-1", Namespace: "kubetest"},
		Spec: snapv1.VolumeSnapshotSpec{
			Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To("data")},
		},
	}
	if _, err := sc.SnapshotV1().VolumeSnapshots("kubetest").Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create VolumeSnapshot: %v", err)
	}
	got, err := sc.SnapshotV1().VolumeSnapshots("kubetest").Get(ctx, "data-1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get VolumeSnapshot: %v", err)
	}
	if src := got.Spec.Source.PersistentVolumeClaimName; src == nil || *src != "data" {
		t.Errorf("source pvc = %v, want data", src)
	}
	// cert-manager's CRDs are installed too.
	if _, err := env.Client.Discovery().ServerResourcesForGroupVersion("cert-manager.io/v1"); err != nil {
		t.Errorf("cert-manager.io/v1 not served: %v", err)
	}
}
