// Package manifests renders and checks stateguard's deployment manifests:
// the kustomize base and overlays under deploy/kustomize (built with the
// kustomize Go API, as `kubectl kustomize` does) and the compose files.
//
// Its tests apply every rendered object with a server-side dry run against a
// real kube-apiserver, check the RBAC of each ServiceAccount with
// SubjectAccessReviews, and boot a real NATS server from the shipped NATS
// configuration to check the per-service users and their permissions.
package manifests
