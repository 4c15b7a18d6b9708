package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/demo"
	"github.com/stateguard/stateguard/pkg/harness/devcert"
	"github.com/stateguard/stateguard/pkg/harness/stack"
)

// Where stateguard runs in the e2e cluster, and the names of its own
// serving certificate's Secret and of the CA that signs it.
const (
	selfNamespace = "stateguard"
	ingestSecret  = "sastingest-https"
	selfCASecret  = "stateguard-local-ca"
)

// checkIngestCertificateRotation is the dogfood of #19: the ingest's serving
// certificate is a TLS Secret in stateguard's namespace, mounted by the
// ingest's Deployment and projected into the files the running ingest
// serves from (the kubelet's part, played here); certwatcher watches it like
// any other certificate, the correlator knows it, an operator asks for its
// rotation, certwatcher re-issues it with the in-cluster CA and rolls the
// Deployment — and the ingest serves the new serial without a restart, an
// upload right after going through a handshake with it.
func checkIngestCertificateRotation(t *testing.T, ctx context.Context, s *stack.Stack, api apiClient, client *events.Client) {
	t.Helper()
	certFile, keyFile, ok := s.ServingFiles("sastingest")
	if !ok || s.CA() == nil {
		t.Fatal("the stack serves no HTTPS (stack.Config.TLS)")
	}
	kube := s.Kube()
	installIngestCertificate(t, ctx, kube, s.CA(), certFile, keyFile)
	pctx, stopProjection := context.WithCancel(ctx)
	defer stopProjection()
	go projectSecret(pctx, kube, selfNamespace, ingestSecret, certFile, keyFile)

	before := servedSerial(t, ctx, s)
	eventually(t, "the correlator knowing the ingest's certificate", func() bool {
		return strings.Contains(api.get(t, ctx, s.URL("correlator")+"/v1/certificates?namespace="+selfNamespace, s.Token), before)
	})
	if code := api.post(t, ctx, s.URL("correlator")+"/v1/certificates/"+selfNamespace+"/"+ingestSecret+"/rotate", s.OperatorToken,
		`{"reason":"e2e: dogfood, rotate the ingest's serving certificate"}`); code != http.StatusAccepted {
		t.Fatalf("rotate the ingest's certificate: %d, want 202", code)
	}
	var rot events.CertificateRotated
	eventually(t, "certificate.rotated for the ingest's Secret", func() bool {
		var err error
		rot, err = lastRotationOf(ctx, client, ingestSecret)
		return err == nil
	})
	if rot.OldSerial != before || rot.NewSerial == before || rot.Method != "in-cluster-ca" {
		t.Fatalf("rotation %+v; the ingest served %s before", rot, before)
	}
	eventually(t, "the ingest serving the new serial "+rot.NewSerial, func() bool { return servedSerial(t, ctx, s) == rot.NewSerial })

	// An upload right after, on a new connection: its handshake is with
	// the new certificate and the ingest accepts it.
	rec := &servedRecorder{rt: s.HTTPClient().Transport}
	hc := &http.Client{Timeout: time.Minute, Transport: rec}
	sarif := []byte(`{"version":"2.1.0","$schema":"https://json.schemastore.org/sarif-2.1.0.json","runs":[{"tool":{"driver":{"name":"gosec","version":"2.30.0"}},"results":[]}]}`)
	if _, err := demo.PostGitHub(ctx, hc, s.URL("sastingest"), s.Token, demo.Upload{Repository: "stateguard/stateguard",
		CommitSHA: "0123456789abcdef0123456789abcdef01234567", Ref: "refs/heads/main", App: "sastingest", Namespace: selfNamespace,
		Version: "e2e", Category: "gosec"}, sarif); err != nil {
		t.Fatalf("upload after the rotation: %v", err)
	}
	if got := rec.serials(); len(got) == 0 || got[0] != rot.NewSerial {
		t.Errorf("the upload's handshake saw serials %v, want the new %s", got, rot.NewSerial)
	}
	t.Logf("dogfood: the ingest's certificate %s rotated to %s without a restart; an upload went through the new one", before, rot.NewSerial)
}

// installIngestCertificate puts the ingest's serving certificate in the
// cluster as production has it: a TLS Secret (annotated with the in-cluster
// CA that signs it) mounted by the ingest's Deployment.
func installIngestCertificate(t *testing.T, ctx context.Context, kube kubernetes.Interface, ca *devcert.CA, certFile, keyFile string) {
	t.Helper()
	caKey, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	crt, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: selfCASecret}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": ca.PEM, "tls.key": caKey}},
		{ObjectMeta: metav1.ObjectMeta{Name: ingestSecret, Annotations: map[string]string{"stateguard.io/ca-secret": selfNamespace + "/" + selfCASecret}},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": crt, "tls.key": key}},
	} {
		if _, err := kube.CoreV1().Secrets(selfNamespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatalf("Secret %s: %v", sec.Name, err)
		}
	}
	labels := map[string]string{"app.kubernetes.io/name": "sastingest"}
	one := int32(1)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "sastingest", Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "sastingest", Image: "stateguard/sastingest:e2e",
					VolumeMounts: []corev1.VolumeMount{{Name: "https", MountPath: "/etc/stateguard/https", ReadOnly: true}}}},
				Volumes: []corev1.Volume{{Name: "https", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: ingestSecret}}}},
			}}}}
	if _, err := kube.AppsV1().Deployments(selfNamespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Deployment sastingest: %v", err)
	}
}

// projectSecret plays the kubelet's projection of a TLS Secret into a
// pod's files: whenever the Secret holds another certificate, its key and
// then its certificate are written (each through a rename) to the files the
// ingest serves from. A reader seeing the new key with the old certificate
// refuses the pair and keeps the old one until both are there.
func projectSecret(ctx context.Context, kube kubernetes.Interface, ns, name, certFile, keyFile string) {
	var last []byte
	for ctx.Err() == nil {
		sec, err := kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && len(sec.Data["tls.crt"]) > 0 && !bytes.Equal(sec.Data["tls.crt"], last) {
			if devcert.WriteFile(keyFile, sec.Data["tls.key"]) == nil && devcert.WriteFile(certFile, sec.Data["tls.crt"]) == nil {
				last = sec.Data["tls.crt"]
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// servedSerial is the serial of the certificate the ingest serves to a new
// connection, in the events' lower-case hex.
func servedSerial(t *testing.T, ctx context.Context, s *stack.Stack) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL("sastingest")+"/healthz", nil)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("handshake with the ingest: %v", err)
	}
	_ = resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatal("the ingest answered without TLS")
	}
	return fmt.Sprintf("%x", resp.TLS.PeerCertificates[0].SerialNumber)
}

// lastRotationOf is the newest certificate.rotated of a Secret on the
// CERTIFICATE stream.
func lastRotationOf(ctx context.Context, c *events.Client, secret string) (events.CertificateRotated, error) {
	st, err := c.JetStream().Stream(ctx, events.StreamCertificate)
	if err != nil {
		return events.CertificateRotated{}, err
	}
	raw, err := st.GetLastMsgForSubject(ctx, events.SubjectOf(events.TypeCertificateRotated))
	if err != nil {
		return events.CertificateRotated{}, err
	}
	ev, err := events.DecodeMsg(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	if err != nil {
		return events.CertificateRotated{}, err
	}
	rot, err := events.Decode[events.CertificateRotated](ev)
	if err == nil && rot.Secret != secret {
		err = fmt.Errorf("the last rotation is of %s", rot.Secret)
	}
	return rot, err
}

// servedRecorder records the serial each answer's TLS connection served.
type servedRecorder struct {
	rt http.RoundTripper
	mu sync.Mutex
	s  []string
}

func (r *servedRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if resp != nil && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		r.mu.Lock()
		r.s = append(r.s, fmt.Sprintf("%x", resp.TLS.PeerCertificates[0].SerialNumber))
		r.mu.Unlock()
	}
	return resp, err
}

func (r *servedRecorder) serials() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.s...)
}
