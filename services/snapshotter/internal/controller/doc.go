// Package controller is the snapshotter's control loop. One pass
// (Controller.Reconcile) runs every due schedule slot of every SnapshotPolicy
// (consistency hooks, then a VolumeSnapshot with a deterministic name),
// reports snapshots that became ready or failed exactly once, applies
// retention, and runs due restore tests. Controller.Run repeats passes on an
// injected clock and on VolumeSnapshot watch events; only the leader runs it.
package controller
