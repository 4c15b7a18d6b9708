package manifests

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// build renders an overlay or fails the test.
func build(t *testing.T, overlay string) []*unstructured.Unstructured {
	t.Helper()
	dir, err := OverlayDir(overlay)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// convert turns an unstructured object into a typed one.
func convert[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return &v
}

// generated finds a generated object (ConfigMap or Secret) by the name
// before kustomize's hash suffix.
func generated(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() != kind {
			continue
		}
		if unhashed(o.GetName()) == name {
			return o
		}
	}
	return nil
}

// unhashed strips the "-<10 characters>" suffix kustomize appends to the
// names of generated objects.
func unhashed(name string) string {
	if i := len(name) - 11; i > 0 && name[i] == '-' {
		return name[:i]
	}
	return name
}

// services are the stateguard services and their HTTP ports.
var services = []struct {
	name string
	port int32
}{
	{"sastingest", 8080},
	{"certwatcher", 8081},
	{"snapshotter", 8082},
	{"correlator", 8083},
	{"console", 8084},
}

// metricsPort is every service's --metrics-addr port: /metrics is served
// there alone, so the NetworkPolicy metrics-scraping can fence it.
const metricsPort = 9090

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func TestOverlaysBuild(t *testing.T) {
	tests := []struct {
		overlay        string
		natsReplicas   int32
		streamReplicas string
		routes         bool
		pdbs           []string
		secrets        []string
		replicas       map[string]int32
	}{
		{
			overlay: "dev", natsReplicas: 1, streamReplicas: "1", routes: false,
			secrets:  []string{"correlator-api-tokens", "nats-users", "sastingest-tokens", "sastingest-webhook-secrets"},
			replicas: map[string]int32{"sastingest": 1, "certwatcher": 1, "snapshotter": 1, "correlator": 1, "console": 1},
		},
		{
			overlay: "prod", natsReplicas: 3, streamReplicas: "3", routes: true,
			pdbs:     []string{"nats", "sastingest", "snapshotter", "correlator"},
			replicas: map[string]int32{"sastingest": 2, "certwatcher": 1, "snapshotter": 2, "correlator": 2, "console": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.overlay+" renders the stack", func(t *testing.T) {
			objs := build(t, tt.overlay)

			for _, o := range objs {
				if o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition" || strings.HasPrefix(o.GetKind(), "Cluster") {
					continue
				}
				if o.GetNamespace() != "stateguard" {
					t.Errorf("%s %s in namespace %q, want stateguard", o.GetKind(), o.GetName(), o.GetNamespace())
				}
			}
			for _, want := range []struct{ kind, name string }{
				{"Namespace", "stateguard"},
				{"CustomResourceDefinition", "snapshotpolicies.stateguard.io"},
				{"StatefulSet", "nats"}, {"Service", "nats"}, {"Service", "nats-headless"},
				{"Certificate", "nats-server"}, {"Issuer", "stateguard-nats-ca"},
				{"NetworkPolicy", "default-deny"}, {"NetworkPolicy", "allow-dns-egress"},
				{"ClusterRole", "stateguard-certwatcher"}, {"ClusterRole", "stateguard-snapshotter"},
			} {
				if Find(objs, want.kind, want.name) == nil {
					t.Errorf("no %s %s", want.kind, want.name)
				}
			}

			nats := convert[appsv1.StatefulSet](t, Find(objs, "StatefulSet", "nats"))
			if got := *nats.Spec.Replicas; got != tt.natsReplicas {
				t.Errorf("nats replicas = %d, want %d", got, tt.natsReplicas)
			}
			conf := generated(objs, "ConfigMap", "nats-config")
			if conf == nil {
				t.Fatal("no nats-config ConfigMap")
			}
			cm := convert[corev1.ConfigMap](t, conf)
			if got := strings.Contains(cm.Data["cluster.conf"], "routes: ["); got != tt.routes {
				t.Errorf("cluster.conf has routes = %v, want %v", got, tt.routes)
			}
			if !slices.ContainsFunc(nats.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
				return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name
			}) {
				t.Errorf("nats does not mount the generated ConfigMap %s", cm.Name)
			}

			common := generated(objs, "ConfigMap", "stateguard-common")
			if common == nil {
				t.Fatal("no stateguard-common ConfigMap")
			}
			if got := convert[corev1.ConfigMap](t, common).Data["STREAM_REPLICAS"]; got != tt.streamReplicas {
				t.Errorf("STREAM_REPLICAS = %q, want %q", got, tt.streamReplicas)
			}

			var pdbs []string
			for _, o := range OfKind(objs, "PodDisruptionBudget") {
				pdbs = append(pdbs, o.GetName())
			}
			if diff := cmp.Diff(tt.pdbs, pdbs); diff != "" {
				t.Errorf("PodDisruptionBudgets (-want +got):\n%s", diff)
			}
			var secrets []string
			for _, o := range OfKind(objs, "Secret") {
				secrets = append(secrets, unhashed(o.GetName()))
			}
			slices.Sort(secrets)
			if diff := cmp.Diff(tt.secrets, secrets); diff != "" {
				t.Errorf("generated Secrets (-want +got):\n%s", diff)
			}

			for _, s := range services {
				o := Find(objs, "Deployment", s.name)
				if o == nil {
					t.Errorf("no Deployment %s", s.name)
					continue
				}
				d := convert[appsv1.Deployment](t, o)
				if got := *d.Spec.Replicas; got != tt.replicas[s.name] {
					t.Errorf("%s replicas = %d, want %d", s.name, got, tt.replicas[s.name])
				}
				c := d.Spec.Template.Spec.Containers[0]
				if got, _ := envValue(c, "HTTP_ADDR"); got != ":"+strconv.Itoa(int(s.port)) {
					t.Errorf("%s HTTP_ADDR = %q, want :%d", s.name, got, s.port)
				}
				if got, _ := envValue(c, "NATS_USER"); got != s.name {
					t.Errorf("%s NATS_USER = %q, want %s", s.name, got, s.name)
				}
				if got, _ := envValue(c, "METRICS_ADDR"); got != ":"+strconv.Itoa(metricsPort) {
					t.Errorf("%s METRICS_ADDR = %q, want :%d", s.name, got, metricsPort)
				}
				if len(c.Ports) != 2 || c.Ports[0].ContainerPort != s.port || c.Ports[1].Name != "metrics" || c.Ports[1].ContainerPort != metricsPort {
					t.Errorf("%s container ports = %v, want http %d and metrics %d", s.name, c.Ports, s.port, metricsPort)
				}
				if got := d.Spec.Template.Annotations["prometheus.io/port"]; got != strconv.Itoa(metricsPort) {
					t.Errorf("%s prometheus.io/port = %q, want %d", s.name, got, metricsPort)
				}
				if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
					return e.ConfigMapRef != nil && e.ConfigMapRef.Name == common.GetName()
				}) {
					t.Errorf("%s does not take its environment from %s", s.name, common.GetName())
				}
				svc := convert[corev1.Service](t, Find(objs, "Service", s.name))
				if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].Port != s.port || svc.Spec.Ports[1].Name != "metrics" || svc.Spec.Ports[1].Port != metricsPort {
					t.Errorf("Service %s ports = %v, want http %d and metrics %d (a ServiceMonitor selects the port named metrics)", s.name, svc.Spec.Ports, s.port, metricsPort)
				}
			}
		})
	}
}
