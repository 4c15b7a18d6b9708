package rotation

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
)

// Issuer re-issues the certificate held in a TLS Secret. It is the one
// place a way of issuing plugs into the rotation: the executor decides
// whether and when to rotate, records its progress and rolls the
// workloads; an Issuer only gets a new certificate into the Secret.
//
// Two implementations exist: certManagerIssuer (certmanager.go) asks
// cert-manager for a new certificate through the Certificate that writes
// the Secret; inClusterIssuer (incluster.go) signs one with the CA named by
// the stateguard.io/ca-secret annotation. The executor chooses one per
// request (Executor.issuer) and keeps the choice, by Name, across restarts.
type Issuer interface {
	// Name is the method reported in events.CertificateRotated.Method
	// and kept in the request's progress (MethodCertManager or
	// MethodInClusterCA).
	Name() string

	// Issue re-issues the certificate in secret, whose current
	// certificate has the serial oldSerial, and returns the new serial
	// once the Secret holds it.
	//
	// It may be called again for the same request after a restart or a
	// failed attempt, so it must not issue twice when one issuance is
	// already under way. An error made with declined ends the request
	// with certificate.rotation.failed; any other error is retried with
	// the request's redelivery.
	Issue(ctx context.Context, log *slog.Logger, secret *corev1.Secret, oldSerial string) (newSerial string, err error)
}

// issuer decides how the Secret can be re-issued: through cert-manager
// when a Certificate writes it (and the CRD is served), else with the
// in-cluster CA its annotation names; a Secret with neither is declined.
func (e *Executor) issuer(ctx context.Context, s *corev1.Secret) (Issuer, error) {
	certManager := e.o.CertManager
	if e.o.CertManagerServed != nil {
		certManager = e.o.CertManagerServed()
	}
	if certManager && e.o.Dynamic != nil {
		crt, err := e.findCertificate(ctx, s)
		if err != nil {
			return nil, err
		}
		if crt != nil {
			return e.certManagerIssuer(crt), nil
		}
	}
	if s.Annotations[CASecretAnnotation] != "" {
		return e.inClusterIssuer(), nil
	}
	if s.Annotations[CertificateNameAnnotation] != "" {
		return nil, declined("the secret names cert-manager Certificate %q, which does not exist", s.Annotations[CertificateNameAnnotation])
	}
	return nil, declined("no way to re-issue: not managed by cert-manager and no %s annotation names an in-cluster CA", CASecretAnnotation)
}

// resumedIssuer is the issuer a request chose before a restart, by name.
// cert-manager's Certificate is looked up again (it may have gone: then
// Issue declines); the in-cluster CA needs nothing looked up.
func (e *Executor) resumedIssuer(ctx context.Context, s *corev1.Secret, method string) (Issuer, error) {
	if method != MethodCertManager {
		return e.inClusterIssuer(), nil
	}
	iss, err := e.issuer(ctx, s)
	if err != nil {
		return nil, err
	}
	if cm, ok := iss.(*certManagerIssuer); ok {
		return cm, nil
	}
	return e.certManagerIssuer(nil), nil
}

var (
	_ Issuer = (*certManagerIssuer)(nil)
	_ Issuer = (*inClusterIssuer)(nil)
)
