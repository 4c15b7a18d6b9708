// Package restore carries out Restores (stateguard.io/v1alpha1): a claim
// restored in place from a VolumeSnapshot, safely and reversibly.
//
// The Executor is a phase machine over the phase kept in the Restore's
// status (Pending → SafetySnapshot → ScalingDown → Restoring → ScalingUp →
// Verifying → Completed; a failure ends Failed when nothing had changed,
// or goes through RollingBack to RolledBack). Each phase is one function
// that looks at the cluster, does the next idempotent action and either
// waits or moves on; the status is written with the object's
// resourceVersion, so a restarted snapshotter (or a new leader) carries on
// where the last one stopped. Nothing is deleted that has no copy: the old
// volume is retained (and a safety snapshot taken), and a rollback keeps the
// restored volume too.
//
// Requests handles the restore.requested event: it creates the Restore named
// events.RestoreName(request_id), once.
package restore
