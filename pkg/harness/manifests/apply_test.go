package manifests

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

const fieldManager = "stateguard-manifests-test"

// applier applies objects with server-side apply, for real or as a
// server-side dry run (kubectl apply --server-side --dry-run=server), with
// strict field validation so an unknown or misspelt field is an error.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T) *applier {
	t.Helper()
	dyn, err := dynamic.NewForConfig(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

func (a *applier) apply(ctx context.Context, o *unstructured.Unstructured, dryRun bool) error {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		a.mapper.Reset() // a CRD applied a moment ago
		if m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return err
		}
	}
	data, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: new(true), FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if ns := o.GetNamespace(); ns != "" {
		ri = a.dyn.Resource(m.Resource).Namespace(ns)
	}
	_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts)
	return err
}

// TestServerSideDryRun applies every object of both overlays to the real
// kube-apiserver: the namespace and the CRDs for real (CRDs before the
// custom resources that need them), everything else as a server-side dry
// run, which runs defaulting, schema and strict field validation and
// admission without storing anything.
func TestServerSideDryRun(t *testing.T) {
	a := newApplier(t)
	for _, overlay := range Overlays {
		t.Run(overlay, func(t *testing.T) {
			objs := build(t, overlay)
			var real, dry []*unstructured.Unstructured
			for _, o := range objs {
				switch o.GetKind() {
				case "Namespace", "CustomResourceDefinition":
					real = append(real, o)
				case "PrometheusRule":
					// The Prometheus Operator's CRDs are in no module the
					// proxy serves; promtool checks the rules instead
					// (TestAlertRulesPassPromtool).
					continue
				default:
					dry = append(dry, o)
				}
			}
			for _, o := range real {
				if err := a.apply(t.Context(), o, false); err != nil {
					t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
				}
			}
			kinds := map[string]int{}
			for _, o := range dry {
				if err := a.apply(t.Context(), o, true); err != nil {
					t.Errorf("dry-run apply %s %s: %v", o.GetKind(), o.GetName(), err)
				}
				kinds[o.GetKind()]++
			}
			for _, k := range []string{"Deployment", "StatefulSet", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
				"Role", "RoleBinding", "NetworkPolicy", "ConfigMap", "Certificate", "Issuer"} {
				if kinds[k] == 0 {
					t.Errorf("no %s was dry-run applied", k)
				}
			}
			t.Logf("%s: %d objects applied, %d dry-run: %v", overlay, len(real), len(dry), kinds)
		})
	}
}

// TestServerSideDryRunRejectsBadObjects shows the dry run is a real check:
// the same path refuses objects a cluster would refuse.
func TestServerSideDryRunRejectsBadObjects(t *testing.T) {
	a := newApplier(t)
	objs := build(t, "dev")
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			if err := a.apply(t.Context(), o, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		kind    string
		objName string
		mutate  func(o *unstructured.Unstructured)
		wantErr string
	}{
		{"a misspelt field in a Deployment", "Deployment", "correlator", func(o *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(o.Object, int64(2), "spec", "replica")
		}, "field not declared in schema"},
		{"an invalid probe port name", "Deployment", "sastingest", func(o *unstructured.Unstructured) {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			c := cs[0].(map[string]any)
			c["readinessProbe"] = map[string]any{"httpGet": map[string]any{"path": "/readyz", "port": "not_a_valid_name"}}
			_ = unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers")
		}, "port"},
		{"an unknown field in a cert-manager Certificate", "Certificate", "nats-server", func(o *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(o.Object, "yes", "spec", "notAField")
		}, "field not declared in schema"},
		{"rules of the wrong type in a ClusterRole", "ClusterRole", "stateguard-snapshotter", func(o *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(o.Object, "get", "rules")
		}, "rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Find(objs, tt.kind, tt.objName)
			if o == nil {
				t.Fatalf("no %s %s", tt.kind, tt.objName)
			}
			o = o.DeepCopy()
			if err := a.apply(t.Context(), o, true); err != nil {
				t.Fatalf("unchanged object refused: %v", err)
			}
			tt.mutate(o)
			err := a.apply(t.Context(), o, true)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("dry run of the broken object: error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// TestPodsPassRestrictedPodSecurity creates, as a server-side dry run, a Pod
// from every pod template in the stateguard namespace, whose label enforces
// the "restricted" Pod Security Standard: the kube-apiserver's PodSecurity
// admission rejects any pod that could run as root, escalate privileges,
// keep capabilities or run without a seccomp profile.
func TestPodsPassRestrictedPodSecurity(t *testing.T) {
	a := newApplier(t)
	for _, overlay := range Overlays {
		objs := build(t, overlay)
		if err := a.apply(t.Context(), Find(objs, "Namespace", "stateguard"), false); err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() != "Deployment" && o.GetKind() != "StatefulSet" {
				continue
			}
			t.Run(overlay+"/"+o.GetName(), func(t *testing.T) {
				pod := podFromTemplate(t, o)
				if err := a.apply(t.Context(), pod, true); err != nil {
					t.Errorf("pod of %s %s refused: %v", o.GetKind(), o.GetName(), err)
				}
				// The same pod allowed to run as root is refused.
				bad := pod.DeepCopy()
				unstructured.RemoveNestedField(bad.Object, "spec", "securityContext", "runAsNonRoot")
				cs, _, _ := unstructured.NestedSlice(bad.Object, "spec", "containers")
				for _, c := range cs {
					delete(c.(map[string]any)["securityContext"].(map[string]any), "runAsNonRoot")
				}
				_ = unstructured.SetNestedSlice(bad.Object, cs, "spec", "containers")
				if err := a.apply(t.Context(), bad, true); err == nil || !strings.Contains(err.Error(), "PodSecurity") {
					t.Errorf("pod without runAsNonRoot: error %v, want a PodSecurity violation", err)
				}
			})
		}
	}
}

func podFromTemplate(t *testing.T, o *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	tmpl, ok, err := unstructured.NestedMap(o.Object, "spec", "template")
	if err != nil || !ok {
		t.Fatalf("%s %s: no pod template: %v", o.GetKind(), o.GetName(), err)
	}
	pod := &unstructured.Unstructured{Object: tmpl}
	pod.SetAPIVersion("v1")
	pod.SetKind("Pod")
	pod.SetName(o.GetName() + "-pod-security-check")
	pod.SetNamespace(o.GetNamespace())
	// A StatefulSet's claim templates become PVC volumes, as its controller
	// makes them: <template>-<statefulset>-<ordinal>.
	claims, _, _ := unstructured.NestedSlice(o.Object, "spec", "volumeClaimTemplates")
	vols, _, _ := unstructured.NestedSlice(pod.Object, "spec", "volumes")
	for _, c := range claims {
		name, _, _ := unstructured.NestedString(c.(map[string]any), "metadata", "name")
		vols = append(vols, map[string]any{
			"name":                  name,
			"persistentVolumeClaim": map[string]any{"claimName": name + "-" + o.GetName() + "-0"},
		})
	}
	if err := unstructured.SetNestedSlice(pod.Object, vols, "spec", "volumes"); err != nil {
		t.Fatal(err)
	}
	return pod
}
