package rotation

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
)

func TestReissueKeepsShapeAndKeyEncoding(t *testing.T) {
	now := time.Now()
	ca := certgentest.New(t, certgentest.CommonName("ca"), certgentest.CA())
	caPair, err := ParseCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ecOld := certgentest.New(t, certgentest.CommonName("ec"), certgentest.DNSNames("a.example"), certgentest.SignedBy(ca),
		certgentest.NotBefore(now.Add(-24*time.Hour)), certgentest.NotAfter(now.Add(6*24*time.Hour)))
	rsaOld := certgentest.New(t, certgentest.CommonName("rsa"), certgentest.RSA(1024), certgentest.SignedBy(ca))
	tests := []struct {
		name    string
		old     *x509.Certificate
		keyType string
		check   func(t *testing.T, pub any)
	}{
		{"ECDSA P-256 in PKCS#8", ecOld.Cert, "PRIVATE KEY", func(t *testing.T, pub any) {
			if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve.Params().BitSize != 256 {
				t.Errorf("key %T", pub)
			}
		}},
		{"ECDSA in SEC 1", ecOld.Cert, "EC PRIVATE KEY", nil},
		{"a weak RSA key is replaced by a 2048-bit one, PKCS#1 kept", rsaOld.Cert, "RSA PRIVATE KEY", func(t *testing.T, pub any) {
			if k, ok := pub.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
				t.Errorf("key %T", pub)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Reissue(tt.old, tt.keyType, caPair, now)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(got.KeyPEM); b == nil || b.Type != tt.keyType {
				t.Errorf("key PEM type = %v, want %s", b, tt.keyType)
			}
			if got.Cert.Subject.String() != tt.old.Subject.String() || !cmp.Equal(got.Cert.DNSNames, tt.old.DNSNames) ||
				got.Cert.NotAfter.Sub(got.Cert.NotBefore) != tt.old.NotAfter.Sub(tt.old.NotBefore) ||
				got.Cert.SerialNumber.Cmp(tt.old.SerialNumber) == 0 {
				t.Errorf("reissued %s %v %s", got.Cert.Subject, got.Cert.DNSNames, got.Cert.NotAfter.Sub(got.Cert.NotBefore))
			}
			if err := got.Cert.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("not signed by the CA: %v", err)
			}
			if tt.check != nil {
				tt.check(t, got.Cert.PublicKey)
			}
		})
	}
	if _, err := newKeyLike(ed25519.PublicKey(make([]byte, 32))); err != nil {
		t.Errorf("ed25519: %v", err)
	}
	if _, err := ParseCA(ecOld.CertPEM, ecOld.KeyPEM); err == nil {
		t.Error("a leaf accepted as CA")
	}
}

func TestRolledOut(t *testing.T) {
	tests := []struct {
		name string
		dep  appsv1.Deployment
		want bool
	}{
		{"controller has not seen the new generation", appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}}, false},
		{"old replicas still running", appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 2}}, false},
		{"done", appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}}, true},
		{"scaled to zero", appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: 3}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 3}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DeploymentRolledOut(&tt.dep); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 1}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1)},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, UpdatedReplicas: 1, ReadyReplicas: 1, CurrentRevision: "a", UpdateRevision: "b"}}
	if StatefulSetRolledOut(sts) {
		t.Error("statefulset with pending revision is rolled out")
	}
	ds := &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}}
	if !DaemonSetRolledOut(ds) {
		t.Error("daemonset complete but not rolled out")
	}
}

func TestSetIssuingReplacesTheCondition(t *testing.T) {
	crt := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"generation": int64(4)}, "status": map[string]any{
		"conditions": []any{
			map[string]any{"type": "Ready", "status": "True"},
			map[string]any{"type": "Issuing", "status": "False", "reason": "Done"},
		},
	}}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	SetIssuing(crt, now)
	conds, _, _ := unstructured.NestedSlice(crt.Object, "status", "conditions")
	want := []any{
		map[string]any{"type": "Ready", "status": "True"},
		map[string]any{"type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
			"message":            "Certificate re-issuance manually triggered by stateguard certwatcher",
			"lastTransitionTime": "2026-01-02T03:04:05Z", "observedGeneration": int64(4)},
	}
	if diff := cmp.Diff(want, conds); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if !issuing(crt) {
		t.Error("issuing() = false")
	}
}

// TestRateLimit: a long wait is turned into a redelivery with that delay.
func TestRateLimit(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	e, err := New(Options{Client: fake.NewClientset(), Events: nopEvents{}, Marks: nopMarks{}, Log: slog.New(slog.DiscardHandler),
		Clock: clk, Rate: 1.0 / 60, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.wait(t.Context()); err != nil {
		t.Fatalf("first rotation waited: %v", err)
	}
	err = e.wait(t.Context())
	var re *events.RetryError
	if !errors.As(err, &re) || re.Delay < 59*time.Second || re.Delay > 61*time.Second {
		t.Fatalf("second rotation: %v, want a retry in about a minute", err)
	}
	clk.Step(time.Minute)
	if err := e.wait(t.Context()); err != nil {
		t.Fatalf("after a minute: %v", err)
	}
}

type nopEvents struct{ Events }
type nopMarks struct{ Marks }
