// Package rotation carries out io.stateguard.certificate.rotation.requested.v1:
// it re-issues the certificate in a Secret — through cert-manager (the
// Issuing condition, as `cmctl renew` sets it) or by signing a new key with
// an in-cluster CA named by the stateguard.io/ca-secret annotation — rolls
// the workloads that mount the Secret the way `kubectl rollout restart`
// does, waits (bounded) for the rollouts, checks over TLS which certificate
// a Service serves, and publishes certificate.rotated or
// certificate.rotation.failed. Each request id is carried out at most once;
// its progress is kept in a KV bucket so a redelivered request resumes
// instead of rotating twice.
package rotation
