// Package harness is the root of stateguard's test and local-stack support:
// natstest runs an embedded NATS JetStream server, kubetest a real
// kube-apiserver and etcd (envtest) with the CRDs stateguard needs, and
// snapsim plays the CSI external snapshot controller. Tests and `make run`
// use the same code.
package harness
