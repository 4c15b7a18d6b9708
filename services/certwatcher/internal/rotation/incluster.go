package rotation

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
)

// inClusterIssuer re-issues with the in-cluster CA named by the Secret's
// stateguard.io/ca-secret annotation (namespace/name, holding tls.crt and
// tls.key): a new key like the old one, a certificate like the old one.
type inClusterIssuer struct{ e *Executor }

func (e *Executor) inClusterIssuer() *inClusterIssuer { return &inClusterIssuer{e: e} }

// Name implements Issuer.
func (*inClusterIssuer) Name() string { return MethodInClusterCA }

// Issue implements Issuer. It writes the Secret with the resourceVersion
// read, so a concurrent writer makes this attempt fail and retry rather
// than be overwritten; oldSerial is not needed (the executor recognises a
// certificate issued before a restart by its serial).
func (c *inClusterIssuer) Issue(ctx context.Context, log *slog.Logger, s *corev1.Secret, _ string) (string, error) {
	e := c.e
	ref := s.Annotations[CASecretAnnotation]
	caNS, caName, ok := strings.Cut(ref, "/")
	if !ok || caNS == "" || caName == "" {
		return "", declined("annotation %s=%q: want <namespace>/<name>", CASecretAnnotation, ref)
	}
	caSecret, err := e.o.Client.CoreV1().Secrets(caNS).Get(ctx, caName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", declined("CA secret %s not found", ref)
	}
	if err != nil {
		return "", fmt.Errorf("get CA secret %s: %w", ref, err)
	}
	ca, err := ParseCA(caSecret.Data[corev1.TLSCertKey], caSecret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return "", declined("CA secret %s: %v", ref, err)
	}
	old, err := certinfo.Parse(s.Data[corev1.TLSCertKey])
	if err != nil {
		return "", declined("%s of the secret is unreadable: %v", corev1.TLSCertKey, err)
	}
	_, keyType, err := parseKey(s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		keyType = "PRIVATE KEY"
	}
	issued, err := Reissue(old.Leaf(), keyType, ca, e.o.Clock.Now())
	if err != nil {
		return "", declined("issue: %v", err)
	}
	upd := s.DeepCopy()
	certPEM := issued.CertPEM
	caPEM := pemOf(ca.Cert)
	if len(old.Certs) > 1 {
		certPEM = append(append([]byte{}, certPEM...), caPEM...)
	}
	upd.Data[corev1.TLSCertKey] = certPEM
	upd.Data[corev1.TLSPrivateKeyKey] = issued.KeyPEM
	if _, ok := upd.Data["ca.crt"]; ok {
		upd.Data["ca.crt"] = caPEM
	}
	// upd carries the resourceVersion read: the API server rejects the
	// update if the Secret changed since.
	if _, err := e.o.Client.CoreV1().Secrets(s.Namespace).Update(ctx, upd, metav1.UpdateOptions{FieldManager: "certwatcher"}); err != nil {
		if apierrors.IsConflict(err) {
			return "", fmt.Errorf("secret changed while re-issuing; retrying: %w", err)
		}
		return "", fmt.Errorf("write secret: %w", err)
	}
	log.InfoContext(ctx, "certificate re-issued by in-cluster CA", "ca_secret", ref)
	return certinfo.SerialHex(issued.Cert), nil
}
