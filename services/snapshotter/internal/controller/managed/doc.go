// Package managed reads and writes what the snapshotter records on the
// VolumeSnapshots it manages — the schedule slot, the claim, the
// encryption finding, whether the outcome was reported — so the jobs that
// take, report, prune and restore-test snapshots read them one way. Pure
// functions of the object; no I/O.
package managed
