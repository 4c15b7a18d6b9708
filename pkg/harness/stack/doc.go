// Package stack starts stateguard's whole local stack: an embedded NATS
// JetStream server, a local cluster unless one is given
// (kubetest.StartClusterEnv: kube-apiserver + etcd with the CRDs,
// kube-controller-manager, kube-scheduler, KWOK's node, the CSI
// snapshot-controller, csi-provisioner and csi-snapshotter on the test CSI
// driver), and the four services as real processes built from this
// workspace. `make run` and the end-to-end test use it.
package stack
