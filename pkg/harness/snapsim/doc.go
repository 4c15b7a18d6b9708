// Package snapsim plays the CSI external snapshot controller against a real
// API server, where no CSI driver runs: for every VolumeSnapshot it creates a
// bound VolumeSnapshotContent and sets the snapshot's status
// (boundVolumeSnapshotContentName, readyToUse, restoreSize, creationTime),
// or status.error for the snapshots it is told to fail. Tests use it, and so
// does `make run`.
package snapsim
