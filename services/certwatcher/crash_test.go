package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/harness/proctest"
	"github.com/stateguard/stateguard/pkg/runtime/service/kubeclient"
	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/rotation"
)

// cluster is the package's one cluster: rotation rolls Deployments whose
// pods the real controllers and KWOK run.
var cluster *kubetest.Cluster

func TestMain(m *testing.M) {
	// klog is routed once per process: to nowhere here, before the first
	// runWith, so no test's log buffer receives client-go's lines after it
	// ended.
	kubeclient.RouteKlog(slog.New(slog.DiscardHandler))
	os.Exit(kubetest.MainCluster(m, &cluster, kubetest.Options{WithoutCertManager: true}))
}

// TestKilledMidRotation kills certwatcher -9 at the moment its in-cluster
// CA has written the new certificate into the Secret but before it heard
// the API server's answer (a proxy in front of the API server holds the
// answer), restarts it, and lets the request come back (JetStream
// redelivers it after the consumer's ack wait). The rotation completes
// exactly once: one write of the Secret, the old certificate gone from it,
// the Deployment rolled once to the restart time recorded, and one
// certificate.rotated event naming the certificate in the Secret.
func TestKilledMidRotation(t *testing.T) {
	c := cluster
	ns := c.Namespace(t, nil)
	cs := c.Client
	ctx := t.Context()

	ca := certgentest.New(t, certgentest.CommonName("stateguard test CA"), certgentest.CA())
	old := certgentest.New(t, certgentest.CommonName("web"), certgentest.DNSNames("web.shop.svc"),
		certgentest.NotAfter(time.Now().Add(10*24*time.Hour)), certgentest.SignedBy(ca))
	secret := func(name string, cert, key []byte, ann map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key}}
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret("ca", ca.CertPEM, ca.KeyPEM, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret("web-tls", old.CertPEM, old.KeyPEM, map[string]string{rotation.CASecretAnnotation: ns + "/ca"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "c", Image: "example/web:1"}},
					Volumes:    []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "web-tls"}}}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll := func(what string, p *proctest.Proc, d time.Duration, cond func(context.Context) bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, d, true, func(ctx context.Context) (bool, error) { return cond(ctx), nil }); err != nil {
			logs := "(certwatcher not started yet)"
			if p != nil {
				logs = p.Logs()
			}
			t.Fatalf("waiting for %s: %v\nlogs:\n%s", what, err, logs)
		}
	}
	poll("web's pod running", nil, 2*time.Minute, func(ctx context.Context) bool {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return err == nil && len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning
	})

	bin := proctest.Build(t, ".")
	srv := natstest.Run(t)
	ec := natstest.Client(t, srv)
	px := kubetest.StartHoldProxy(t, c.Env)
	secretPath := "/api/v1/namespaces/" + ns + "/secrets/web-tls"
	var secretWrites atomic.Int32
	px.Observe(func(r *http.Request) {
		if (r.Method == http.MethodPut || r.Method == http.MethodPatch) && r.URL.Path == secretPath {
			secretWrites.Add(1)
		}
	})
	issued := px.Hold(func(r *http.Request) bool { return r.Method == http.MethodPut && r.URL.Path == secretPath }, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	env := map[string]string{
		"KUBECONFIG": px.Kubeconfig(t), "NATS_URL": srv.ClientURL(), "HTTP_ADDR": addr,
		"CERTWATCHER_CLUSTER": "on", "CERTWATCHER_NAMESPACES": ns,
		// The ack wait is reissue + rollout + 2×verify + 1 min: the
		// shortest that still lets web roll, so the redelivery comes soon.
		"CERTWATCHER_REISSUE_TIMEOUT": "1s", "CERTWATCHER_ROLLOUT_TIMEOUT": "15s", "CERTWATCHER_VERIFY_TIMEOUT": "1s",
	}
	p := proctest.Start(t, bin, env)
	poll("certwatcher ready", p, time.Minute, func(ctx context.Context) bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	const requestID = "req-crash-1"
	ev, err := events.NewEvent(events.TypeCertificateRotationRequest, "/test/operator", "request-crash-1",
		events.CertificateRotationRequested{RequestID: requestID, Namespace: ns, Secret: "web-tls", Reason: "expiring"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ec.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	select {
	case <-issued.Arrived:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the Secret was never written\nlogs:\n%s", p.Logs())
	}
	p.Kill()
	issued.Release()
	afterKill, err := cs.CoreV1().Secrets(ns).Get(ctx, "web-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(afterKill.Data[corev1.TLSCertKey], old.CertPEM) {
		t.Fatal("killed at the Secret's write, but the API server did not make it")
	}
	t.Logf("killed -9 with the new certificate written and unacknowledged")

	p = proctest.Start(t, bin, env)
	var rotated []events.Event
	poll("certificate.rotated after the redelivery", p, 4*time.Minute, func(ctx context.Context) bool {
		rotated = certificateEvents(ctx, t, ec, events.TypeCertificateRotated)
		return len(rotated) > 0
	})
	got, err := events.Decode[events.CertificateRotated](rotated[0])
	if err != nil {
		t.Fatal(err)
	}
	final, err := cs.CoreV1().Secrets(ns).Get(ctx, "web-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := certinfo.Parse(final.Data[corev1.TLSCertKey])
	if err != nil {
		t.Fatal(err)
	}
	oldSerial, serial := certinfo.SerialHex(old.Cert), certinfo.SerialHex(chain.Leaf())
	if n := secretWrites.Load(); n != 1 {
		t.Errorf("the Secret was written %d times, want once (no second issuance)", n)
	}
	if !bytes.Equal(final.Data[corev1.TLSCertKey], afterKill.Data[corev1.TLSCertKey]) {
		t.Error("the certificate in the Secret changed after the restart: issued twice")
	}
	if serial == oldSerial || bytes.Contains(final.Data[corev1.TLSCertKey], old.CertPEM) || bytes.Equal(final.Data[corev1.TLSPrivateKeyKey], old.KeyPEM) {
		t.Error("the old certificate or key is still in the Secret")
	}
	if got.RequestID != requestID || got.OldSerial != oldSerial || got.NewSerial != serial || len(got.Rolled) != 1 || got.Rolled[0].Name != "web" {
		t.Errorf("certificate.rotated %+v, want request %s from %s to the Secret's %s rolling web", got, requestID, oldSerial, serial)
	}
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" || d.Generation != 2 {
		t.Errorf("web: generation %d, template annotations %v; want rolled once (generation 2, restartedAt set)", d.Generation, d.Spec.Template.Annotations)
	}
	if n := len(certificateEvents(ctx, t, ec, events.TypeCertificateRotated)); n != 1 {
		t.Errorf("%d certificate.rotated events, want 1", n)
	}
	if n := len(certificateEvents(ctx, t, ec, events.TypeCertificateRotationFailed)); n != 0 {
		t.Errorf("%d certificate.rotation.failed events, want 0", n)
	}
	t.Logf("rotated once: %s → %s, Secret written %d time(s), web at generation %d", oldSerial, serial, secretWrites.Load(), d.Generation)
}

// certificateEvents returns every event of type typ in the CERTIFICATE
// stream.
func certificateEvents(ctx context.Context, t *testing.T, ec *events.Client, typ string) []events.Event {
	t.Helper()
	st, err := ec.JetStream().Stream(ctx, events.StreamCertificate)
	if err != nil {
		return nil
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil
	}
	var out []events.Event
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		ev, err := events.DecodeMsg(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type() == typ {
			out = append(out, ev)
		}
	}
	return out
}
