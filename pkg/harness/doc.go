// Package harness is the root of stateguard's test and local-stack support:
// natstest runs an embedded NATS JetStream server, kubetest a real
// kube-apiserver and etcd (envtest) with the CRDs stateguard needs (and,
// with StartCluster, the controllers, scheduler, KWOK and CSI sidecars:
// the snapshots of every test and of `make run` are taken by the real CSI
// snapshot controllers), and csidriver is a CSI driver (volumes as directories, snapshots as tar archives, faults
// injected by call name) for the real CSI sidecars. Tests and `make run`
// use the same code.
package harness
