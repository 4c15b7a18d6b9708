// Package v1alpha1 holds the SnapshotPolicy API (stateguard.io/v1alpha1): which
// PVCs to snapshot, when, with which consistency hooks, how long to keep the
// snapshots, and whether to test restoring them.
//
// +kubebuilder:object:generate=true
// +groupName=stateguard.io
package v1alpha1
