// Command snapsim runs the simulated CSI snapshot controller against the
// cluster of a kubeconfig, for `make run` on a control plane without a CSI
// driver:
//
//	go run ./pkg/harness/snapsim/cmd/snapsim --kubeconfig bin/kubeconfig
//
// Snapshots labelled with --fail-label (any value) fail with status.error.
package main
