// Package discovery finds certificates in a Kubernetes cluster with
// informers (list once, then watch): kubernetes.io/tls Secrets, Opaque
// Secrets whose keys match PEM patterns, and cert-manager Certificates when
// that CRD is served. It records parsed chains in an inventory.Store and
// answers who uses a Secret: pods that mount or reference it, their owning
// workloads, and Ingresses whose TLS section names it.
package discovery
