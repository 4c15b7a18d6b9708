// Package kubetest runs a real Kubernetes control plane — kube-apiserver and
// etcd built from the Go module proxy by `make tools` — through
// controller-runtime's envtest, with the CRDs stateguard needs installed from
// the Go module cache: the CSI VolumeSnapshot CRDs from the
// external-snapshotter client/v8 module, cert-manager's from its module, and
// stateguard's own from deploy/kustomize.
package kubetest
