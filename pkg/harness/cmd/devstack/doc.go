// Command devstack is `make run`: it starts the local stack — embedded NATS
// JetStream, a local control plane with the CRDs (or the cluster of
// KUBECONFIG) whose controllers, KWOK node and CSI snapshot controllers
// run the demo's workload and take its snapshots, and the four services — prints
// every address, and with -demo=1 seeds a demo and tells its story. Ctrl-C
// stops everything and leaves no process behind.
package main
