package v1alpha1

// Labels and annotations the snapshotter sets on the VolumeSnapshots it
// creates, and reads back.
const (
	// LabelManagedBy is app.kubernetes.io/managed-by; its value is ManagedBy.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy marks snapshots the snapshotter created.
	ManagedBy = "stateguard-snapshotter"
	// LabelPolicy names the SnapshotPolicy that created a snapshot.
	LabelPolicy = "stateguard.io/policy"
	// LabelPVC names the snapshotted PVC.
	LabelPVC = "stateguard.io/pvc"
	// LabelPinned = "true" exempts a snapshot from retention.
	LabelPinned = "stateguard.io/pinned"
	// AnnotationPinnedReason says why a snapshot is pinned.
	AnnotationPinnedReason = "stateguard.io/pinned-reason"
	// AnnotationPinUpdatedAt is the time (RFC 3339, nanoseconds) of the pin
	// or unpin request last applied; older requests are ignored.
	AnnotationPinUpdatedAt = "stateguard.io/pin-updated-at"
	// AnnotationSlot is the schedule slot (RFC 3339) of a snapshot.
	AnnotationSlot = "stateguard.io/slot"
	// AnnotationWorkloads holds the JSON list of workloads that ran on the
	// PVC when the snapshot was taken.
	AnnotationWorkloads = "stateguard.io/workloads"
	// AnnotationReported is set to completed or failed once the snapshot's
	// event is stored in JetStream.
	AnnotationReported = "stateguard.io/reported"
	// AnnotationHookErrors lists hook failures that were ignored
	// (onError: Continue).
	AnnotationHookErrors = "stateguard.io/hook-errors"
	// AnnotationSnapshotRequest on a SnapshotPolicy asks for one on-demand
	// snapshot of a PVC the policy selects, taken like a slot of the
	// policy: "<pvc>@<RFC 3339 time>" (stateguardctl snapshot create
	// writes it). The time is the snapshot's slot, so each value names one
	// snapshot; the snapshotter carries a value out once and records it in
	// status.lastRequest.
	AnnotationSnapshotRequest = "stateguard.io/snapshot-request"
	// AnnotationEncryption holds the JSON of the encryption finding
	// (events.SnapshotEncryption) made when the snapshot was created.
	AnnotationEncryption = "stateguard.io/encryption"
	// LabelRestoreTest marks the objects of a restore test.
	LabelRestoreTest = "stateguard.io/restore-test"
	// LabelRestore names the Restore that made an object: its safety
	// snapshot, the claim it created, its verification Job.
	LabelRestore = "stateguard.io/restore"
	// AnnotationRestoredFrom is the VolumeSnapshot a restored claim was
	// filled from.
	AnnotationRestoredFrom = "stateguard.io/restored-from-snapshot"
)

// The Ready condition of a SnapshotPolicy and its reasons.
const (
	// ConditionReady is True when the policy's spec parses and its schedule
	// runs, False (with one of the Invalid* reasons) when it does not.
	ConditionReady = "Ready"
	// ReasonScheduled: the spec is valid and the policy runs on its schedule.
	ReasonScheduled = "Scheduled"
	// ReasonInvalidSchedule: spec.schedule does not parse as cron.
	ReasonInvalidSchedule = "InvalidSchedule"
	// ReasonInvalidTimeZone: spec.timeZone names no known time zone.
	ReasonInvalidTimeZone = "InvalidTimeZone"
	// ReasonInvalidRetention: spec.retention.maxAge is not a duration.
	ReasonInvalidRetention = "InvalidRetention"
	// ReasonInvalidHookTimeout: a hook's timeout is not a duration.
	ReasonInvalidHookTimeout = "InvalidHookTimeout"
	// ReasonInvalidRestoreTest: spec.restoreTest.schedule does not parse.
	ReasonInvalidRestoreTest = "InvalidRestoreTest"
	// ReasonInvalidSelector: spec.pvcSelector is not a valid label selector.
	ReasonInvalidSelector = "InvalidSelector"
)

// The Encrypted condition of a SnapshotPolicy and its reasons.
const (
	// ConditionEncrypted says whether the claims of the last run are known
	// to be encrypted at rest.
	ConditionEncrypted = "Encrypted"
	// ReasonEncrypted: every claim is known to be encrypted.
	ReasonEncrypted = "Encrypted"
	// ReasonNotEncrypted: a claim's classes say it is not encrypted.
	ReasonNotEncrypted = "NotEncrypted"
	// ReasonEncryptionUnknown: nothing says whether a claim is encrypted
	// (a driver not in the table and no allowlist entry matching).
	ReasonEncryptionUnknown = "EncryptionUnknown"
	// ReasonEncryptionRequired is the snapshot.failed reason of a claim
	// not snapshotted under encryption: Required.
	ReasonEncryptionRequired = "EncryptionRequired"
)
