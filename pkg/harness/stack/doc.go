// Package stack starts stateguard's whole local stack: an embedded NATS
// JetStream server, a Kubernetes control plane (kube-apiserver + etcd with
// the CRDs) unless a cluster is given, the CSI snapshot simulator, and the
// four services as real processes built from this workspace. `make run` and
// the end-to-end test use it.
package stack
