// Package controller is the snapshotter's control loop. One pass
// (Controller.Reconcile) reads every SnapshotPolicy (policy.Parse; an
// invalid one gets Ready=False and runs nothing, ready.go), decides which
// schedule slot is due and records each outcome in the policy's status,
// and hands each job its part, in this order:
//
//   - schedule/slots (package slots): each due schedule slot and
//     on-demand request takes one VolumeSnapshot with a deterministic name
//     per claim, after the encryption-at-rest check;
//   - hooks (package consistency): the pre and post hooks around it;
//   - reporting (package reporting): every snapshot that settled is
//     announced once;
//   - retention (package pruning): what the policy's retention drops is
//     deleted, never a pinned snapshot;
//   - restore tests (package restoretests): due verification Jobs start,
//     finished ones are announced and cleaned up.
//
// What the jobs record on a VolumeSnapshot is read one way (package
// managed). Controller.Run repeats passes on an injected clock and on
// VolumeSnapshot watch events; only the leader runs it.
package controller
