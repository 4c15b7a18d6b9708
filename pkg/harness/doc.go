// Package harness is the root of stateguard's test and local-stack support:
// natstest runs an embedded NATS JetStream server, kubetest a real
// kube-apiserver and etcd (envtest) with the CRDs stateguard needs (and,
// with StartCluster, the controllers, scheduler, KWOK and CSI sidecars),
// snapsim plays the CSI external snapshot controller, and csidriver is a
// CSI driver (volumes as directories, snapshots as tar archives, faults
// injected by call name) for the real CSI sidecars. Tests and `make run`
// use the same code.
package harness
