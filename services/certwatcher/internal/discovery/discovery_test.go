package discovery

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/logtest"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

var patterns = []string{"*.crt", "*.pem"}

func tlsSecret(ns, name string, cert, key []byte, opts ...func(*corev1.Secret)) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func startDiscovery(t *testing.T, o Options) (*Discovery, *inventory.Store, *logtest.Buffer) {
	t.Helper()
	logs := &logtest.Buffer{}
	store := inventory.New(nil)
	o.Client, o.Store, o.Log = env.Client, store, slog.New(slog.NewJSONHandler(logs, nil))
	if o.PEMKeyPatterns == nil {
		o.PEMKeyPatterns = patterns
	}
	d, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d.Start(ctx)
	if err := d.WaitForSync(t.Context()); err != nil {
		t.Fatal(err)
	}
	return d, store, logs
}

// eventually waits (bounded) until cond holds: informers deliver
// asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("%s: never happened", what)
	}
}

func summarize(recs []inventory.Record) map[string]string {
	out := map[string]string{}
	for _, r := range recs {
		k := r.Source.Namespace + "/" + r.Source.Secret + "/" + r.Source.Key
		if r.Err != nil {
			out[k] = "error"
			continue
		}
		var subj []string
		for _, c := range r.Chain {
			subj = append(subj, c.Subject.CommonName)
		}
		out[k] = strings.Join(subj, ",")
	}
	return out
}

func TestDiscoversCertificatesAndGarbage(t *testing.T) {
	ns := namespace(t)
	other := namespace(t)
	ctx := t.Context()
	ca := certgentest.New(t, certgentest.CommonName("ca"), certgentest.CA())
	web := certgentest.New(t, certgentest.CommonName("web"), certgentest.SignedBy(ca))
	weak := certgentest.New(t, certgentest.CommonName("weak"), certgentest.RSA(1024))
	secrets := []*corev1.Secret{
		tlsSecret(ns, "chain", certgentest.ChainPEM(web, ca), web.KeyPEM),
		tlsSecret(ns, "weak", weak.CertPEM, weak.KeyPEM),
		tlsSecret(ns, "not-pem", []byte("this is not a certificate"), web.KeyPEM),
		tlsSecret(ns, "truncated", web.CertPEM[:len(web.CertPEM)/2], web.KeyPEM),
		tlsSecret(ns, "truncated-der", web.Cert.Raw[:50], web.KeyPEM),
		tlsSecret(ns, "key-as-cert", web.KeyPEM, web.KeyPEM),
		tlsSecret(ns, "ignored-by-label", web.CertPEM, web.KeyPEM, func(s *corev1.Secret) { s.Labels = map[string]string{"certwatcher": "skip"} }),
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "opaque"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{
			"ca.crt": ca.CertPEM, "client.pem": web.CertPEM, "key.pem": web.KeyPEM, "password": []byte("hunter2"),
			"bundle.pem": append(append([]byte{}, web.KeyPEM...), web.CertPEM...),
		}},
		tlsSecret(other, "elsewhere", web.CertPEM, web.KeyPEM),
	}
	for _, s := range secrets {
		if _, err := env.Client.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	d, store, logs := startDiscovery(t, Options{Namespaces: []string{ns}, LabelSelector: "certwatcher!=skip"})
	want := map[string]string{
		ns + "/chain/tls.crt":         "web,ca",
		ns + "/weak/tls.crt":          "weak",
		ns + "/not-pem/tls.crt":       "error",
		ns + "/truncated/tls.crt":     "error",
		ns + "/truncated-der/tls.crt": "error",
		ns + "/key-as-cert/tls.crt":   "error",
		ns + "/opaque/ca.crt":         "ca",
		ns + "/opaque/client.pem":     "web",
		ns + "/opaque/bundle.pem":     "web",
	}
	eventually(t, "all secrets discovered", func() bool { return len(store.All()) == len(want) })
	if diff := cmp.Diff(want, summarize(store.All())); diff != "" {
		t.Fatalf("(-want +got)\n%s", diff)
	}
	for _, r := range store.Secret(ns, "key-as-cert") {
		if !errors.Is(r.Err, certinfo.ErrPrivateKey) {
			t.Errorf("key-as-cert: err = %v", r.Err)
		}
	}
	out := logs.String()
	for _, name := range []string{"not-pem", "truncated", "truncated-der", "key-as-cert"} {
		if !strings.Contains(out, `"secret":"`+name+`"`) {
			t.Errorf("no finding logged for %s", name)
		}
	}
	for _, inf := range d.secrets {
		for _, obj := range inf.GetStore().List() {
			for k, v := range obj.(*corev1.Secret).Data {
				if bytes.Contains(v, web.KeyPEM[40:80]) || bytes.Contains(v, []byte("hunter2")) {
					t.Errorf("the informer cache keeps key material in %s/%s", obj.(*corev1.Secret).Name, k)
				}
			}
		}
	}
	if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, string(web.KeyPEM[40:80])) || strings.Contains(out, "hunter2") {
		t.Error("the log quotes key material")
	}

	// A watch, not a poll: a renewed certificate and a deleted Secret show up.
	renewed := certgentest.New(t, certgentest.CommonName("web-renewed"))
	s, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "weak", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data[corev1.TLSCertKey] = renewed.CertPEM
	if _, err := env.Client.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.CoreV1().Secrets(ns).Delete(ctx, "not-pem", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "update and delete seen", func() bool {
		got := summarize(store.All())
		_, deleted := got[ns+"/not-pem/tls.crt"]
		return got[ns+"/weak/tls.crt"] == "web-renewed" && !deleted
	})
}

func TestUsersOfASecret(t *testing.T) {
	ns := namespace(t)
	ctx := t.Context()
	cs := env.Client
	leaf := certgentest.New(t, certgentest.CommonName("api"))
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "api-tls", leaf.CertPEM, leaf.KeyPEM), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tru := true
	dep, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: podTemplate("api", volumeSecret("api-tls")),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "api-123", OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: &tru}}},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: podTemplate("api", volumeSecret("api-tls")),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := []*corev1.Pod{
		pod("api-123-a", volumeSecret("api-tls"), metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &tru}),
		pod("db-0", func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "api-tls"}}}}}}}}
		}, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "u1", Controller: &tru}),
		pod("agent-x", func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{{Name: "CERT", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "api-tls"}, Key: "tls.crt"}}}}
		}, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "u2", Controller: &tru}),
		pod("debug", func(s *corev1.PodSpec) {
			s.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "api-tls"}}}}
		}),
		pod("unrelated", volumeSecret("other")),
	}
	for _, p := range pods {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "public"},
		Spec: networkingv1.IngressSpec{
			TLS:            []networkingv1.IngressTLS{{Hosts: []string{"api.example"}, SecretName: "api-tls"}},
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "api", Port: networkingv1.ServiceBackendPort{Number: 443}}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d, _, _ := startDiscovery(t, Options{Namespaces: []string{ns}})
	ref := func(kind, name string) events.ObjectRef {
		return events.ObjectRef{Kind: kind, Namespace: ns, Name: name}
	}
	want := events.CertificateUsers{
		Pods:      []events.ObjectRef{ref("Pod", "agent-x"), ref("Pod", "api-123-a"), ref("Pod", "db-0"), ref("Pod", "debug")},
		Workloads: []events.WorkloadRef{ref("DaemonSet", "agent"), ref("Deployment", "api"), ref("Pod", "debug"), ref("StatefulSet", "db")},
		Ingresses: []events.ObjectRef{ref("Ingress", "public")},
	}
	if diff := cmp.Diff(want, d.Users(ns, "api-tls")); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if got := d.Users(ns, "nobody"); len(got.Pods)+len(got.Workloads)+len(got.Ingresses) != 0 {
		t.Errorf("users of an unused secret: %+v", got)
	}
}

func TestCertManagerCertificateOwnsSecret(t *testing.T) {
	ns := namespace(t)
	ctx := t.Context()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	crt := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec": map[string]any{"secretName": "web-tls", "dnsNames": []any{"web.example"},
			"issuerRef": map[string]any{"name": "ca", "kind": "Issuer"}},
	}}
	created, err := dyn.Resource(CertificateGVR).Namespace(ns).Create(ctx, crt, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	notAfter := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	renewal := time.Date(2027, 1, 30, 0, 0, 0, 0, time.UTC)
	_ = unstructured.SetNestedField(created.Object, notAfter.Format(time.RFC3339), "status", "notAfter")
	_ = unstructured.SetNestedField(created.Object, renewal.Format(time.RFC3339), "status", "renewalTime")
	if _, err := dyn.Resource(CertificateGVR).Namespace(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d, _, _ := startDiscovery(t, Options{Namespaces: []string{ns}, Dynamic: dyn})
	if !d.CertManagerEnabled() {
		t.Fatal("cert-manager CRD installed but not detected")
	}
	want := &events.CertManagerInfo{Certificate: "web", NotAfter: &notAfter, RenewalTime: &renewal}
	if diff := cmp.Diff(want, d.CertManager(ns, "web-tls")); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if got := d.CertManager(ns, "other"); got != nil {
		t.Errorf("unowned secret: %+v", got)
	}
}

func podTemplate(app string, opts ...func(*corev1.PodSpec)) corev1.PodTemplateSpec {
	t := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example/app:1"}}},
	}
	for _, o := range opts {
		o(&t.Spec)
	}
	return t
}

func volumeSecret(name string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Volumes = append(s.Volumes, corev1.Volume{Name: "tls-" + name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name}}})
	}
}

func pod(name string, spec func(*corev1.PodSpec), owners ...metav1.OwnerReference) *corev1.Pod {
	t := podTemplate(name, spec)
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: t.Labels, OwnerReferences: owners}, Spec: t.Spec}
}
