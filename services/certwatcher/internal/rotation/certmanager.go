package rotation

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/discovery"
)

// certManagerIssuer re-issues through cert-manager: it sets the Issuing
// condition of the Certificate that writes the Secret, as `cmctl renew`
// does, and waits until the Secret holds a certificate with another
// serial.
type certManagerIssuer struct {
	e   *Executor
	crt *unstructured.Unstructured // nil: the Certificate is gone
}

func (e *Executor) certManagerIssuer(crt *unstructured.Unstructured) *certManagerIssuer {
	return &certManagerIssuer{e: e, crt: crt}
}

// Name implements Issuer.
func (*certManagerIssuer) Name() string { return MethodCertManager }

// Issue implements Issuer. A Certificate already Issuing (triggered by an
// earlier attempt) is not triggered again, only waited for.
func (c *certManagerIssuer) Issue(ctx context.Context, log *slog.Logger, s *corev1.Secret, oldSerial string) (string, error) {
	e, crt := c.e, c.crt
	if crt == nil {
		return "", declined("the cert-manager Certificate of the secret disappeared during the rotation")
	}
	crts := e.o.Dynamic.Resource(discovery.CertificateGVR).Namespace(s.Namespace)
	if !issuing(crt) {
		SetIssuing(crt, e.o.Clock.Now())
		if _, err := crts.UpdateStatus(ctx, crt, metav1.UpdateOptions{FieldManager: "certwatcher"}); err != nil {
			if apierrors.IsConflict(err) {
				return "", fmt.Errorf("certificate %s changed meanwhile: %w", crt.GetName(), err)
			}
			return "", fmt.Errorf("trigger issuance of certificate %s: %w", crt.GetName(), err)
		}
		log.InfoContext(ctx, "cert-manager re-issuance triggered", "certificate", crt.GetName())
	}
	var newSerial string
	err := e.poll(ctx, e.o.ReissueTimeout, func(ctx context.Context) (bool, error) {
		cur, err := e.o.Client.CoreV1().Secrets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		c, err := certinfo.Parse(cur.Data[corev1.TLSCertKey])
		if err != nil {
			return false, nil
		}
		if sn := certinfo.SerialHex(c.Leaf()); sn != oldSerial {
			newSerial = sn
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", declined("cert-manager did not write a new certificate to the secret within %s", e.o.ReissueTimeout)
	}
	return newSerial, nil
}

// findCertificate finds the Certificate that writes the Secret: the one
// its annotation names, else one whose spec.secretName is the Secret; nil
// when there is none.
func (e *Executor) findCertificate(ctx context.Context, s *corev1.Secret) (*unstructured.Unstructured, error) {
	crts := e.o.Dynamic.Resource(discovery.CertificateGVR).Namespace(s.Namespace)
	if name := s.Annotations[CertificateNameAnnotation]; name != "" {
		crt, err := crts.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return crt, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get certificate %s: %w", name, err)
		}
	}
	list, err := crts.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	for i := range list.Items {
		if sn, _, _ := unstructured.NestedString(list.Items[i].Object, "spec", "secretName"); sn == s.Name {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

func issuing(crt *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crt.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Issuing" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// SetIssuing sets the Issuing condition to True on a Certificate the way
// cmctl renew does (reason ManuallyTriggered).
func SetIssuing(crt *unstructured.Unstructured, now time.Time) {
	conds, _, _ := unstructured.NestedSlice(crt.Object, "status", "conditions")
	cond := map[string]any{
		"type":               "Issuing",
		"status":             "True",
		"reason":             "ManuallyTriggered",
		"message":            "Certificate re-issuance manually triggered by stateguard certwatcher",
		"lastTransitionTime": now.UTC().Format(time.RFC3339),
		"observedGeneration": crt.GetGeneration(),
	}
	replaced := false
	for i, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Issuing" {
			conds[i], replaced = cond, true
		}
	}
	if !replaced {
		conds = append(conds, cond)
	}
	_ = unstructured.SetNestedSlice(crt.Object, conds, "status", "conditions")
}
