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
//
// Where to look: the policy (whether a Secret may be rotated) is
// shouldRotate; the phase machine (new → issuing → issued → done) is
// Executor.rotate; the ways of issuing are the Issuer interface (issuer.go)
// and its implementations in certmanager.go and incluster.go.
package rotation
