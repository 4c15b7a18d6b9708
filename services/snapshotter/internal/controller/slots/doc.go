// Package slots is the snapshotter's schedule job: for a due schedule slot
// (Taker.Slot) or an on-demand request (Taker.OnDemand) it takes one
// VolumeSnapshot per selected claim, with a deterministic name so a slot
// run twice takes nothing twice — after the claim's encryption-at-rest
// check (a Required policy refuses an unencrypted claim), between the
// policy's pre and post hooks (package consistency). The controller decides
// which slot is due and records the outcome in the policy's status.
package slots
