// Package restoreplan turns a snapshot into the ready-to-apply manifests and
// the steps that restore it: a PersistentVolumeClaim whose dataSource is the
// VolumeSnapshot, and how to switch the workload over to it. The snapshotter
// serves plans on its API and CLI; the correlator puts them into its restore
// recommendations.
package restoreplan
