// Package restoreplan turns a snapshot into a restore plan: a Restore
// (stateguard.io/v1alpha1) ready to apply, which the snapshotter carries out
// in one step, and the manual fallback in the executor's order — a safety
// snapshot, the workloads scaled down, the old volume retained, the claim
// replaced in place by one of the same name, labels and storage class whose
// dataSource is the VolumeSnapshot, the workloads scaled back. The
// snapshotter serves plans on its API and CLI; the correlator puts them into
// its restore recommendations.
package restoreplan
