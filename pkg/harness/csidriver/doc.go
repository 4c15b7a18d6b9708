// Package csidriver is a CSI driver for tests and `make run`: it speaks the
// CSI spec (identity, controller and the node calls that need no kubelet)
// over gRPC on a unix socket, keeps each volume as a directory and each
// snapshot as a tar archive of one, so a test can write files into a
// volume, snapshot it through the real external-snapshotter, restore it
// into a new claim through the real external-provisioner and compare
// checksums (TreeSums). Faults are injected per call name (Driver.Inject):
// fail with a gRPC code and message, or delay. It passes the kubernetes-csi
// sanity suite (csi-test pkg/sanity).
//
// The driver's bookkeeping (names, sizes, sources) lives in memory; the
// data lives under Options.Root.
package csidriver
