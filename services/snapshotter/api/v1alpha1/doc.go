// Package v1alpha1 holds the SnapshotPolicy and Restore APIs
// (stateguard.io/v1alpha1). A SnapshotPolicy says which
// PVCs to snapshot, when, with which consistency hooks, how long to keep the
// snapshots, and whether to test restoring them; a Restore restores a claim
// in place from a snapshot, safely and reversibly.
//
// +kubebuilder:object:generate=true
// +groupName=stateguard.io
package v1alpha1
