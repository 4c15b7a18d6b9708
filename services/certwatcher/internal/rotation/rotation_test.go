package rotation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/discovery"
	"github.com/stateguard/stateguard/services/certwatcher/internal/marks"
	"github.com/stateguard/stateguard/services/certwatcher/internal/streamtest"
)

type rig struct {
	client *events.Client
	exec   *Executor
	dyn    dynamic.Interface
}

func newRig(t *testing.T, mutate ...func(*Options)) *rig {
	t.Helper()
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	kv, err := marks.Open(t.Context(), c.JetStream(), "certwatcher", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Client: env.Client, Dynamic: dyn, CertManager: true, Events: c, Marks: kv,
		Log: slog.New(slog.DiscardHandler), Rate: 100, Burst: 10,
		ReissueTimeout: 30 * time.Second, RolloutTimeout: 300 * time.Millisecond, VerifyTimeout: 2 * time.Second,
		PollInterval: 50 * time.Millisecond,
	}
	for _, m := range mutate {
		m(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{client: c, exec: e, dyn: dyn}
}

func (r *rig) request(t *testing.T, eventID string, req events.CertificateRotationRequested) events.Event {
	t.Helper()
	ev, err := events.NewEvent(events.TypeCertificateRotationRequest, "/test/operator", eventID, req)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func tlsSecret(ns, name string, cert, key []byte, ann map[string]string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key},
	}
}

// must fails the test on err and returns obj: must(t)(client.Create(...)).
func must(t *testing.T) func(obj any, err error) any {
	return func(obj any, err error) any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
}

func deployment(name, secret string, paused bool) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Paused:   paused,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "c", Image: "example/web:1"}},
					Volumes:    []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}},
				},
			},
		},
	}
}

// serveSecret runs a TLS server presenting whatever certificate the Secret
// holds at handshake time: the stand-in for the rolled pods behind a
// Service.
func serveSecret(t *testing.T, ns, name string) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			s, err := env.Client.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			c, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
			return &c, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				_ = c.(*tls.Conn).Handshake()
				_ = c.Close()
			}(conn)
		}
	}()
	return ln.Addr().String()
}

// TestInClusterCAReissueRollsWorkloads sends a request through the durable
// consumer, then sends it again: one rotation.
func TestInClusterCAReissueRollsWorkloads(t *testing.T) {
	ns := namespace(t, nil)
	ctx := t.Context()
	cs := env.Client
	ca := certgentest.New(t, certgentest.CommonName("stateguard test CA"), certgentest.CA())
	old := certgentest.New(t, certgentest.CommonName("web"), certgentest.Organization("shop"), certgentest.DNSNames("web.shop.svc", "web.example"),
		certgentest.NotBefore(time.Now().Add(-80*24*time.Hour)), certgentest.NotAfter(time.Now().Add(10*24*time.Hour)), certgentest.SignedBy(ca))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "ca", ca.CertPEM, ca.KeyPEM, nil), metav1.CreateOptions{}))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "web-tls", old.CertPEM, old.KeyPEM, map[string]string{CASecretAnnotation: ns + "/ca"}), metav1.CreateOptions{}))
	must(t)(cs.AppsV1().Deployments(ns).Create(ctx, deployment("web", "web-tls", false), metav1.CreateOptions{}))
	must(t)(cs.AppsV1().Deployments(ns).Create(ctx, deployment("frozen", "web-tls", true), metav1.CreateOptions{}))
	must(t)(cs.AppsV1().Deployments(ns).Create(ctx, deployment("unrelated", "other-tls", false), metav1.CreateOptions{}))
	must(t)(cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "https", Port: 443}}},
	}, metav1.CreateOptions{}))
	addr := serveSecret(t, ns, "web-tls")

	r := newRig(t, func(o *Options) {
		o.ServiceAddress = func(*corev1.Service, corev1.ServicePort) string { return addr }
	})
	sub, err := r.exec.Consume(ctx, "certwatcher-rotation", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
	req := events.CertificateRotationRequested{RequestID: "req-1", Namespace: ns, Secret: "web-tls", Reason: "expiring", Causes: []string{"evt-1"}}
	if err := r.client.Publish(ctx, r.request(t, "request-event-1", req)); err != nil {
		t.Fatal(err)
	}
	rotated := waitFor[events.CertificateRotated](t, r.client, events.TypeCertificateRotated, 1)[0]

	s := must(t)(cs.CoreV1().Secrets(ns).Get(ctx, "web-tls", metav1.GetOptions{})).(*corev1.Secret)
	chain, err := certinfo.Parse(s.Data[corev1.TLSCertKey])
	if err != nil {
		t.Fatal(err)
	}
	leaf := chain.Leaf()
	if _, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
		t.Fatalf("new key does not match new certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "web.example"}); err != nil {
		t.Errorf("new certificate does not verify against the CA: %v", err)
	}
	if leaf.Subject.String() != old.Cert.Subject.String() || !cmp.Equal(leaf.DNSNames, old.Cert.DNSNames) ||
		leaf.KeyUsage != old.Cert.KeyUsage || !cmp.Equal(leaf.ExtKeyUsage, old.Cert.ExtKeyUsage) ||
		leaf.NotAfter.Sub(leaf.NotBefore) != old.Cert.NotAfter.Sub(old.Cert.NotBefore) {
		t.Errorf("new certificate differs: subject %s SANs %v validity %s", leaf.Subject, leaf.DNSNames, leaf.NotAfter.Sub(leaf.NotBefore))
	}
	newSerial := certinfo.SerialHex(leaf)
	ref := func(name string) events.WorkloadRef {
		return events.WorkloadRef{Kind: "Deployment", Namespace: ns, Name: name}
	}
	want := events.CertificateRotated{
		RequestID: "req-1", Namespace: ns, Secret: "web-tls", Method: MethodInClusterCA,
		OldSerial: certinfo.SerialHex(old.Cert), NewSerial: newSerial,
		Rolled: []events.WorkloadRef{ref("web")}, Paused: []events.WorkloadRef{ref("frozen")},
		Verification: events.TLSVerification{Checked: true, Service: "web", Port: 443, ServedSerial: newSerial, Match: true,
			Error: "rollout not complete within 300ms: Deployment/web"},
		Causes: []string{"evt-1"},
	}
	if diff := cmp.Diff(want, rotated); diff != "" {
		t.Errorf("rotated event (-want +got)\n%s", diff)
	}
	ann := func(name string) string {
		d := must(t)(cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})).(*appsv1.Deployment)
		return d.Spec.Template.Annotations[RestartedAtAnnotation]
	}
	if ann("web") == "" {
		t.Error("deployment web was not rolled")
	}
	if ann("frozen") != "" || ann("unrelated") != "" {
		t.Error("a paused or unrelated deployment was rolled")
	}

	// The same request again, under another event id: nothing happens.
	if err := r.client.Publish(ctx, r.request(t, "request-event-2", req)); err != nil {
		t.Fatal(err)
	}
	marker := events.CertificateRotationRequested{RequestID: "req-marker", Namespace: ns, Secret: "missing"}
	if err := r.client.Publish(ctx, r.request(t, "request-event-3", marker)); err != nil {
		t.Fatal(err)
	}
	// The consumer handles events in order: once the marker's failure is
	// out, the repeated request was handled.
	waitFor[events.CertificateRotationFailed](t, r.client, events.TypeCertificateRotationFailed, 1)
	if n := len(streamtest.Stored(t, r.client, events.TypeCertificateRotated)); n != 1 {
		t.Errorf("%d rotated events, want 1", n)
	}
	s2 := must(t)(cs.CoreV1().Secrets(ns).Get(ctx, "web-tls", metav1.GetOptions{})).(*corev1.Secret)
	if s2.ResourceVersion != s.ResourceVersion {
		t.Error("the secret was rewritten by a repeated request")
	}
}

// waitFor waits (bounded) until n events of typ are stored and returns
// their payloads.
func waitFor[T any](t *testing.T, c *events.Client, typ string, n int) []T {
	t.Helper()
	var evs []events.Event
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		evs = streamtest.Stored(t, c, typ)
		return len(evs) >= n, nil
	})
	if err != nil {
		t.Fatalf("%d %s events, want %d", len(evs), typ, n)
	}
	return streamtest.Payloads[T](t, evs)
}

// TestCertManagerRenewal plays cert-manager: when the Issuing condition
// turns True, it writes a new certificate to the Secret and clears it.
func TestCertManagerRenewal(t *testing.T) {
	ns := namespace(t, nil)
	ctx := t.Context()
	cs := env.Client
	r := newRig(t)
	old := certgentest.New(t, certgentest.CommonName("api"))
	next := certgentest.New(t, certgentest.CommonName("api"))
	crts := r.dyn.Resource(discovery.CertificateGVR).Namespace(ns)
	must(t)(crts.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": "api", "namespace": ns},
		"spec": map[string]any{"secretName": "api-tls", "dnsNames": []any{"api.example"},
			"issuerRef": map[string]any{"name": "letsencrypt", "kind": "ClusterIssuer"}},
	}}, metav1.CreateOptions{}))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "api-tls", old.CertPEM, old.KeyPEM, map[string]string{CertificateNameAnnotation: "api"}), metav1.CreateOptions{}))
	must(t)(cs.AppsV1().Deployments(ns).Create(ctx, deployment("api", "api-tls", false), metav1.CreateOptions{}))

	// The fake cert-manager.
	issued := make(chan string, 1)
	go func() {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			crt, err := crts.Get(ctx, "api", metav1.GetOptions{})
			if err != nil || !issuing(crt) {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(crt.Object, "status", "conditions")
			reason := conds[0].(map[string]any)["reason"].(string)
			s, err := cs.CoreV1().Secrets(ns).Get(ctx, "api-tls", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey] = next.CertPEM, next.KeyPEM
			if _, err := cs.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
				return false, nil
			}
			_ = unstructured.SetNestedSlice(crt.Object, []any{map[string]any{"type": "Ready", "status": "True", "reason": "Ready", "message": "ok"}}, "status", "conditions")
			if _, err := crts.UpdateStatus(ctx, crt, metav1.UpdateOptions{}); err != nil {
				return false, nil
			}
			issued <- reason
			return true, nil
		})
		if err != nil {
			issued <- "never: " + err.Error()
		}
	}()

	req := events.CertificateRotationRequested{RequestID: "cm-1", Namespace: ns, Secret: "api-tls", Reason: "key exposed"}
	if err := r.exec.Handle(ctx, r.request(t, "cm-event", req)); err != nil {
		t.Fatal(err)
	}
	if reason := <-issued; reason != "ManuallyTriggered" {
		t.Errorf("Issuing condition reason = %q", reason)
	}
	got := streamtest.Payloads[events.CertificateRotated](t, streamtest.Stored(t, r.client, events.TypeCertificateRotated))
	if len(got) != 1 {
		t.Fatalf("%d rotated events", len(got))
	}
	if got[0].Method != MethodCertManager || got[0].OldSerial != certinfo.SerialHex(old.Cert) || got[0].NewSerial != certinfo.SerialHex(next.Cert) {
		t.Errorf("rotated = %+v", got[0])
	}
	if diff := cmp.Diff([]events.WorkloadRef{{Kind: "Deployment", Namespace: ns, Name: "api"}}, got[0].Rolled); diff != "" {
		t.Errorf("rolled (-want +got)\n%s", diff)
	}
	if got[0].Verification.Checked || got[0].Verification.Error == "" {
		t.Errorf("no Service: verification = %+v", got[0].Verification)
	}
}

func TestRequestsNotCarriedOut(t *testing.T) {
	ctx := t.Context()
	cs := env.Client
	optedOutNS := namespace(t, map[string]string{OptOutAnnotation: "disabled"})
	ns := namespace(t, nil)
	ca := certgentest.New(t, certgentest.CommonName("ca"), certgentest.CA())
	leaf := certgentest.New(t, certgentest.CommonName("x"), certgentest.SignedBy(ca))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "ca", ca.CertPEM, ca.KeyPEM, nil), metav1.CreateOptions{}))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "plain", leaf.CertPEM, leaf.KeyPEM, nil), metav1.CreateOptions{}))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "opted-out", leaf.CertPEM, leaf.KeyPEM, map[string]string{OptOutAnnotation: "disabled", CASecretAnnotation: ns + "/ca"}), metav1.CreateOptions{}))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "bad-ca-ref", leaf.CertPEM, leaf.KeyPEM, map[string]string{CASecretAnnotation: ns + "/nope"}), metav1.CreateOptions{}))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "garbage", []byte("not a cert"), leaf.KeyPEM, map[string]string{CASecretAnnotation: ns + "/ca"}), metav1.CreateOptions{}))
	must(t)(cs.CoreV1().Secrets(optedOutNS).Create(ctx, tlsSecret(optedOutNS, "any", leaf.CertPEM, leaf.KeyPEM, map[string]string{CASecretAnnotation: ns + "/ca"}), metav1.CreateOptions{}))
	tests := []struct {
		name, ns, secret, reason string
	}{
		{"no cert-manager and no CA annotation", ns, "plain", "no way to re-issue"},
		{"opt-out on the secret", ns, "opted-out", "disabled by annotation stateguard.io/rotation=disabled on the secret"},
		{"opt-out on the namespace", optedOutNS, "any", "disabled by annotation stateguard.io/rotation=disabled on namespace"},
		{"missing secret", ns, "missing", "not found"},
		{"CA secret missing", ns, "bad-ca-ref", "CA secret " + ns + "/nope not found"},
		{"unreadable certificate", ns, "garbage", "unreadable"},
	}
	r := newRig(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := events.CertificateRotationRequested{RequestID: "no-" + tt.secret + tt.ns, Namespace: tt.ns, Secret: tt.secret}
			if err := r.exec.Handle(ctx, r.request(t, req.RequestID, req)); err != nil {
				t.Fatal(err)
			}
			failed := streamtest.Payloads[events.CertificateRotationFailed](t, streamtest.Stored(t, r.client, events.TypeCertificateRotationFailed))
			if len(failed) != i+1 {
				t.Fatalf("%d failed events, want %d", len(failed), i+1)
			}
			if got := failed[i]; got.RequestID != req.RequestID || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("failed = %+v, want reason containing %q", got, tt.reason)
			}
		})
	}
	if n := len(streamtest.Stored(t, r.client, events.TypeCertificateRotated)); n != 0 {
		t.Errorf("%d rotated events", n)
	}
	s := must(t)(cs.CoreV1().Secrets(ns).Get(ctx, "opted-out", metav1.GetOptions{})).(*corev1.Secret)
	if string(s.Data[corev1.TLSCertKey]) != string(leaf.CertPEM) {
		t.Error("an opted-out secret was changed")
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	ctx := t.Context()
	cs := env.Client
	ns := namespace(t, nil)
	ca := certgentest.New(t, certgentest.CommonName("ca"), certgentest.CA())
	leaf := certgentest.New(t, certgentest.CommonName("x"), certgentest.SignedBy(ca))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "ca", ca.CertPEM, ca.KeyPEM, nil), metav1.CreateOptions{}))
	before := must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "x-tls", leaf.CertPEM, leaf.KeyPEM, map[string]string{CASecretAnnotation: ns + "/ca"}), metav1.CreateOptions{})).(*corev1.Secret)
	must(t)(cs.AppsV1().Deployments(ns).Create(ctx, deployment("x", "x-tls", false), metav1.CreateOptions{}))
	tests := []struct {
		name   string
		global bool
		perReq bool
	}{
		{"--dry-run", true, false},
		{"dry_run in the request", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, func(o *Options) { o.DryRun = tt.global })
			req := events.CertificateRotationRequested{RequestID: "dry", Namespace: ns, Secret: "x-tls", DryRun: tt.perReq}
			if err := r.exec.Handle(ctx, r.request(t, "dry", req)); err != nil {
				t.Fatal(err)
			}
			got := streamtest.Payloads[events.CertificateRotated](t, streamtest.Stored(t, r.client, events.TypeCertificateRotated))
			if len(got) != 1 || !got[0].DryRun || got[0].Method != MethodInClusterCA || got[0].NewSerial != "" || len(got[0].Rolled) != 1 {
				t.Fatalf("rotated = %+v", got)
			}
			after := must(t)(cs.CoreV1().Secrets(ns).Get(ctx, "x-tls", metav1.GetOptions{})).(*corev1.Secret)
			d := must(t)(cs.AppsV1().Deployments(ns).Get(ctx, "x", metav1.GetOptions{})).(*appsv1.Deployment)
			if after.ResourceVersion != before.ResourceVersion || d.Spec.Template.Annotations[RestartedAtAnnotation] != "" {
				t.Error("dry run changed the cluster")
			}
		})
	}
}

// TestResumesAfterARestartMidRotation: the progress record says the
// re-issue started and the Secret already holds a new certificate (the
// process died after writing it): the request resumes at rolling and does
// not re-issue.
func TestResumesAfterARestartMidRotation(t *testing.T) {
	ns := namespace(t, nil)
	ctx := t.Context()
	cs := env.Client
	ca := certgentest.New(t, certgentest.CommonName("ca"), certgentest.CA())
	old := certgentest.New(t, certgentest.CommonName("svc"), certgentest.SignedBy(ca))
	written := certgentest.New(t, certgentest.CommonName("svc"), certgentest.SignedBy(ca))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "ca", ca.CertPEM, ca.KeyPEM, nil), metav1.CreateOptions{}))
	before := must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "svc-tls", written.CertPEM, written.KeyPEM,
		map[string]string{CASecretAnnotation: ns + "/ca"}), metav1.CreateOptions{})).(*corev1.Secret)
	must(t)(cs.AppsV1().Deployments(ns).Create(ctx, deployment("svc", "svc-tls", false), metav1.CreateOptions{}))
	r := newRig(t)
	if err := r.exec.save(ctx, progressKey("resume-1"), progress{Phase: phaseIssuing, Method: MethodInClusterCA, OldSerial: certinfo.SerialHex(old.Cert)}); err != nil {
		t.Fatal(err)
	}
	req := events.CertificateRotationRequested{RequestID: "resume-1", Namespace: ns, Secret: "svc-tls"}
	if err := r.exec.Handle(ctx, r.request(t, "resume-event", req)); err != nil {
		t.Fatal(err)
	}
	got := streamtest.Payloads[events.CertificateRotated](t, streamtest.Stored(t, r.client, events.TypeCertificateRotated))
	if len(got) != 1 || got[0].OldSerial != certinfo.SerialHex(old.Cert) || got[0].NewSerial != certinfo.SerialHex(written.Cert) || len(got[0].Rolled) != 1 {
		t.Fatalf("rotated = %+v", got)
	}
	after := must(t)(cs.CoreV1().Secrets(ns).Get(ctx, "svc-tls", metav1.GetOptions{})).(*corev1.Secret)
	if after.ResourceVersion != before.ResourceVersion {
		t.Error("the secret was re-issued again")
	}
}
