package manifests

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// otherApp is a namespace that did not opt in.
const otherApp = "team-b"

// TestRBACNamespacedMode applies the RBAC of the namespaced overlay
// (components/namespaced) for real: certwatcher and the snapshotter may do
// in the opted-in namespace (team-a) all that the cluster-mode matrix
// allows them, and none of it in a namespace that did not opt in (team-b)
// nor cluster-wide, except what Kubernetes only grants cluster-wide
// (VolumeSnapshotContents) and the snapshotter's Lease in stateguard.
func TestRBACNamespacedMode(t *testing.T) {
	ctx := t.Context()
	// The cluster mode's bindings (TestRBACMatrix applies them on this
	// same API server) must not be what grants the rights checked here.
	for _, name := range []string{"stateguard-certwatcher", "stateguard-snapshotter"} {
		err := kube.Client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{app, otherApp} {
		_, err := kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	a := newApplier(t)
	objs := build(t, "namespaced")
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRoleBinding":
			if n := o.GetName(); n == "stateguard-certwatcher" || n == "stateguard-snapshotter" {
				t.Fatalf("the namespaced overlay still binds %s cluster-wide", n)
			}
			fallthrough
		case "Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole":
			if err := a.apply(ctx, o, false); err != nil {
				t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	}
	t.Cleanup(func() { // leave the API server to the cluster-mode test as it was
		ctx := context.Background()
		for _, name := range []string{"stateguard-certwatcher", "stateguard-snapshotter"} {
			_ = kube.Client.RbacV1().RoleBindings(app).Delete(ctx, name, metav1.DeleteOptions{})
		}
		_ = kube.Client.RbacV1().ClusterRoleBindings().Delete(ctx, "stateguard-snapshotter-contents", metav1.DeleteOptions{})
	})

	type check struct {
		sa string
		a  access
	}
	var allowed, denied []check
	for _, row := range rbacMatrix {
		if row.sa != "certwatcher" && row.sa != "snapshotter" {
			continue
		}
		for _, acc := range row.allowed {
			switch {
			case acc.namespace == app:
				allowed = append(allowed, check{row.sa, acc})
				other := acc
				other.namespace = otherApp
				denied = append(denied, check{row.sa, other})
			case clusterScoped[acc.resource] || acc.resource == "leases":
				allowed = append(allowed, check{row.sa, acc})
			case acc.resource == "namespaces":
				// Cluster-wide no more: only the opted-in namespace itself
				// (checked below with a real request).
				denied = append(denied, check{row.sa, acc})
			default:
				t.Fatalf("%s: %s is neither in %s nor known to be cluster-scoped", row.sa, acc, app)
			}
		}
		for _, acc := range concat(row.denied, everyoneDenied) {
			denied = append(denied, check{row.sa, acc})
		}
	}
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var still []string
		for _, c := range allowed {
			ok, err := review(ctx, c.sa, c.a)
			if err != nil {
				return false, err
			}
			if !ok {
				still = append(still, c.sa+": "+c.a.String())
			}
		}
		pending = still
		return len(still) == 0, nil
	})
	if err != nil {
		t.Fatalf("not allowed in namespaced mode: %v (%v)", pending, err)
	}
	for _, c := range denied {
		ok, err := review(ctx, c.sa, c.a)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Errorf("namespaced mode: %s may %s; it must not", c.sa, c.a)
		}
	}
	t.Logf("%d allowed, %d denied", len(allowed), len(denied))

	// certwatcher reads the opt-out annotation of the namespace a
	// certificate lives in: a real GET as its ServiceAccount works for the
	// opted-in namespace and is refused for another.
	cfg := rest.CopyConfig(kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:stateguard:certwatcher", Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	cw, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cw.CoreV1().Namespaces().Get(ctx, app, metav1.GetOptions{}); err != nil {
		t.Errorf("certwatcher cannot get its opted-in namespace %s: %v", app, err)
	}
	if _, err := cw.CoreV1().Namespaces().Get(ctx, otherApp, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("certwatcher gets namespace %s that did not opt in: %v", otherApp, err)
	}
	// And the overlay tells both services which namespaces they act in.
	for name, env := range map[string]string{"certwatcher": "CERTWATCHER_NAMESPACES", "snapshotter": "WATCH_NAMESPACE"} {
		if !strings.Contains(strings.Join(deploymentEnv(t, objs, name), " "), env+"="+app) {
			t.Errorf("the namespaced overlay does not set %s=%s on %s", env, app, name)
		}
	}
}

// deploymentEnv lists NAME=value of the env of Deployment name's first
// container.
func deploymentEnv(t *testing.T, objs []*unstructured.Unstructured, name string) []string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != name {
			continue
		}
		d := convert[appsv1.Deployment](t, o)
		var out []string
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			out = append(out, e.Name+"="+e.Value)
		}
		return out
	}
	t.Fatalf("no Deployment %s", name)
	return nil
}

// clusterScoped are the resources the namespaced mode still grants
// cluster-wide (components/namespaced/snapshotcontents.yaml): Kubernetes
// has no namespaced grant for them.
var clusterScoped = map[string]bool{
	"volumesnapshotcontents": true,
	"volumesnapshotclasses":  true,
	"storageclasses":         true,
	"persistentvolumes":      true,
}
