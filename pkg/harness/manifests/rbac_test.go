package manifests

import (
	"context"
	"fmt"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// access is one request a ServiceAccount might make.
type access struct {
	verb, group, resource, subresource, namespace string
}

func (a access) String() string {
	r := a.resource
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.group != "" {
		r += "." + a.group
	}
	ns := a.namespace
	if ns == "" {
		ns = "(cluster)"
	}
	return fmt.Sprintf("%s %s in %s", a.verb, r, ns)
}

// expand makes one access per verb.
func expand(group, resource, subresource, namespace string, verbs ...string) []access {
	out := make([]access, 0, len(verbs))
	for _, v := range verbs {
		out = append(out, access{v, group, resource, subresource, namespace})
	}
	return out
}

func concat(lists ...[]access) []access {
	var out []access
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// app is a namespace where an application runs, outside stateguard's own.
const app = "team-a"

// rbacMatrix is what each ServiceAccount must be allowed (what its service
// does) and a list of things it must be denied.
var rbacMatrix = []struct {
	sa      string
	allowed []access
	denied  []access
}{
	{
		sa: "sastingest",
		denied: concat(
			expand("", "secrets", "", app, "get", "list"),
			expand("", "secrets", "", "stateguard", "get"),
			expand("", "pods", "", app, "list"),
			expand("", "configmaps", "", "stateguard", "get"),
			expand("snapshot.storage.k8s.io", "volumesnapshots", "", app, "list", "create"),
			expand("", "namespaces", "", "", "delete", "list"),
			expand("coordination.k8s.io", "leases", "", "stateguard", "get"),
		),
	},
	{
		sa: "correlator",
		denied: concat(
			expand("", "pods", "", app, "list", "get"),
			expand("", "secrets", "", app, "get"),
			expand("snapshot.storage.k8s.io", "volumesnapshots", "", app, "get", "patch"),
			expand("stateguard.io", "snapshotpolicies", "", app, "list"),
			expand("", "namespaces", "", "", "delete"),
			expand("cert-manager.io", "certificates", "status", app, "update"),
		),
	},
	{
		sa: "certwatcher",
		allowed: concat(
			expand("", "secrets", "", app, "get", "list", "watch", "update"),
			expand("", "pods", "", app, "list", "watch"),
			expand("", "services", "", app, "list"),
			expand("", "namespaces", "", "", "get"),
			expand("apps", "replicasets", "", app, "list", "watch"),
			expand("apps", "deployments", "", app, "get", "list", "patch"),
			expand("apps", "statefulsets", "", app, "get", "list", "patch"),
			expand("apps", "daemonsets", "", app, "get", "list", "patch"),
			expand("networking.k8s.io", "ingresses", "", app, "list", "watch"),
			expand("cert-manager.io", "certificates", "", app, "get", "list", "watch"),
			expand("cert-manager.io", "certificates", "status", app, "update"),
		),
		denied: concat(
			expand("snapshot.storage.k8s.io", "volumesnapshots", "", app, "create", "delete"),
			expand("", "secrets", "", app, "create", "delete"),
			expand("", "pods", "", app, "delete", "create"),
			expand("", "pods", "exec", app, "create"),
			expand("apps", "deployments", "", app, "update", "delete", "create"),
			expand("cert-manager.io", "certificates", "", app, "update", "delete"),
			expand("", "namespaces", "", "", "delete", "update"),
			expand("rbac.authorization.k8s.io", "clusterrolebindings", "", "", "create"),
			expand("", "configmaps", "", app, "get"),
			expand("", "events", "", app, "create"),
			expand("coordination.k8s.io", "leases", "", "stateguard", "get", "update"),
			expand("", "secrets", "", app, "patch"),
			expand("", "services", "", app, "update"),
			expand("apps", "statefulsets", "", app, "update", "delete"),
		),
	},
	{
		sa: "snapshotter",
		allowed: concat(
			expand("snapshot.storage.k8s.io", "volumesnapshots", "", app, "create", "delete", "get", "list", "watch", "patch", "update"),
			expand("snapshot.storage.k8s.io", "volumesnapshotcontents", "", "", "get", "create", "delete"),
			expand("snapshot.storage.k8s.io", "volumesnapshotclasses", "", "", "get", "list"),
			expand("storage.k8s.io", "storageclasses", "", "", "get"),
			expand("", "persistentvolumeclaims", "", app, "get", "list", "watch", "create", "delete"),
			expand("", "pods", "", app, "get", "list", "watch"),
			expand("", "pods", "exec", app, "create"),
			expand("apps", "replicasets", "", app, "get", "patch"),
			expand("apps", "deployments", "", app, "get", "patch"),
			expand("apps", "statefulsets", "", app, "get", "patch"),
			expand("", "persistentvolumes", "", "", "get", "patch"),
			expand("stateguard.io", "restores", "", app, "get", "list", "watch", "create"),
			expand("stateguard.io", "restores", "status", app, "get", "update", "patch"),
			expand("batch", "jobs", "", app, "create", "get", "list", "delete"),
			expand("coordination.k8s.io", "leases", "", "stateguard", "get", "create", "update"),
			expand("stateguard.io", "snapshotpolicies", "", app, "get", "list", "watch"),
			expand("stateguard.io", "snapshotpolicies", "status", app, "get", "update", "patch"),
			expand("", "events", "", app, "create", "patch"),
		),
		denied: concat(
			// Not even list: which Secrets an app mounts comes from certwatcher.
			expand("", "secrets", "", app, "get", "list", "watch", "update", "patch", "create", "delete"),
			expand("", "secrets", "", "stateguard", "get"),
			expand("apps", "deployments", "", app, "update", "delete", "create"),
			expand("apps", "statefulsets", "", app, "update", "delete"),
			expand("", "persistentvolumes", "", "", "delete", "create", "update", "list"),
			expand("stateguard.io", "restores", "", app, "update", "patch", "delete"),
			expand("snapshot.storage.k8s.io", "volumesnapshotcontents", "", "", "update", "patch"),
			expand("snapshot.storage.k8s.io", "volumesnapshotclasses", "", "", "create", "delete", "update"),
			expand("storage.k8s.io", "storageclasses", "", "", "create", "update", "delete"),
			expand("apps", "daemonsets", "", app, "patch"),
			expand("stateguard.io", "snapshotpolicies", "", app, "create", "update", "delete"),
			expand("coordination.k8s.io", "leases", "", app, "get", "update"),
			expand("", "pods", "", app, "delete", "create"),
			expand("", "persistentvolumeclaims", "", app, "update", "patch"),
			expand("", "namespaces", "", "", "delete", "list"),
			expand("cert-manager.io", "certificates", "status", app, "update"),
		),
	},
}

func review(ctx context.Context, sa string, a access) (bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:stateguard:" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:stateguard", "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace,
		},
	}}
	res, err := kube.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return res.Status.Allowed, nil
}

// TestRBACMatrix applies the ServiceAccounts, Roles, ClusterRoles and their
// bindings of the dev overlay for real, then asks the kube-apiserver's RBAC
// authorizer (SubjectAccessReview) whether each ServiceAccount may do what
// its service needs, and may not do the rest.
func TestRBACMatrix(t *testing.T) {
	a := newApplier(t)
	objs := build(t, "dev")
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			if err := a.apply(t.Context(), o, false); err != nil {
				t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	}

	// The authorizer learns of new bindings through its informers: wait
	// until every expected permission is granted, then check the denials.
	var pending []string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		for _, row := range rbacMatrix {
			for _, acc := range row.allowed {
				ok, err := review(ctx, row.sa, acc)
				if err != nil {
					return false, err
				}
				if !ok {
					pending = append(pending, row.sa+": "+acc.String())
				}
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		t.Fatalf("not allowed after the RBAC was applied: %v (%v)", pending, err)
	}

	for _, row := range rbacMatrix {
		t.Run(row.sa, func(t *testing.T) {
			denied := concat(row.denied, everyoneDenied)
			t.Logf("%d allowed, %d denied", len(row.allowed), len(denied))
			for _, acc := range denied {
				ok, err := review(t.Context(), row.sa, acc)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					t.Errorf("%s may %s; it must not", row.sa, acc)
				}
			}
		})
	}
}

// everyoneDenied: no stateguard identity may remove a tenant, widen its own
// rights, mint tokens, or touch CRDs and nodes.
var everyoneDenied = concat(
	expand("", "namespaces", "", "", "delete", "create"),
	expand("rbac.authorization.k8s.io", "clusterroles", "", "", "create", "update", "escalate", "bind"),
	expand("rbac.authorization.k8s.io", "rolebindings", "", "stateguard", "create"),
	expand("", "serviceaccounts", "token", "stateguard", "create"),
	expand("", "nodes", "", "", "list"),
	expand("apiextensions.k8s.io", "customresourcedefinitions", "", "", "create", "delete"),
)
