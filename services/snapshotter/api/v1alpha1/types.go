package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of SnapshotPolicy.
var GroupVersion = schema.GroupVersion{Group: "stateguard.io", Version: "v1alpha1"}

// Resource is the plural resource name of SnapshotPolicy.
const Resource = "snapshotpolicies"

// AddToScheme registers the types of this package.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &SnapshotPolicy{}, &SnapshotPolicyList{}, &Restore{}, &RestoreList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Duration is a Go duration string such as 90s, 36h or 2160h30m (units ns,
// us, ms, s, m, h; no days). The API server refuses anything else; Parse
// reads it at reconcile, where an overflow is the only error left.
//
// It is a string rather than a metav1.Duration so that a policy stored
// before validation existed still decodes: its error then belongs to that
// policy alone (a Ready=False condition), instead of failing the list of
// every policy.
//
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:XValidation:rule="self.matches('^(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a Go duration such as 90m, 36h or 2160h (units ns, us, ms, s, m, h; there is no unit for days: write 72h for 3 days)",reason=FieldValueInvalid
type Duration string

// OnError says what a failing hook does to the snapshot.
// +kubebuilder:validation:Enum=Fail;Continue
type OnError string

// The hook error modes.
const (
	// OnErrorFail fails the snapshot when the hook fails.
	OnErrorFail OnError = "Fail"
	// OnErrorContinue takes the snapshot anyway.
	OnErrorContinue OnError = "Continue"
)

// Schedule is a cron expression: five fields (minute hour day-of-month
// month day-of-week) or a descriptor (@yearly, @annually, @monthly, @weekly,
// @daily, @midnight, @hourly, @every <duration>). The API server checks the
// shape (CEL has no cron parser); a field out of range, such as minute 61,
// is found at reconcile (Ready=False, InvalidSchedule).
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every (([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+|[0-9A-Za-z*?,/-]+( +[0-9A-Za-z*?,/-]+){4})$')",message="must be a cron expression of five fields (minute hour day-of-month month day-of-week, such as '0 * * * *') or a descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every 6h); set the time zone in timeZone, not in the expression",reason=FieldValueInvalid
type Schedule string

// Encryption says what the snapshotter requires of a snapshot's encryption
// at rest, judged from the claim's StorageClass, the VolumeSnapshotClass
// and the CSI driver (services/snapshotter/README.md, "Encryption at rest").
// +kubebuilder:validation:Enum=Required;Preferred;Off
type Encryption string

// The encryption modes.
const (
	// EncryptionRequired takes no snapshot of a claim that is not known to
	// be encrypted: the policy's Encrypted condition and snapshot.failed
	// say why.
	EncryptionRequired Encryption = "Required"
	// EncryptionPreferred snapshots anyway; the Encrypted condition and
	// snapshot.completed say what was found.
	EncryptionPreferred Encryption = "Preferred"
	// EncryptionOff checks nothing; snapshot.completed still carries what
	// was found.
	EncryptionOff Encryption = "Off"
)

// Hook is a command run in a container of every pod that mounts the PVC,
// before (pre) or after (post) the snapshot is taken.
type Hook struct {
	// Container to run the command in; empty means the pod's first container.
	// +optional
	Container string `json:"container,omitempty"`
	// Command and arguments, not run through a shell.
	// +kubebuilder:validation:MinItems=1
	Command []string `json:"command"`
	// Timeout bounds the command, as a Go duration (default 30s).
	// +optional
	Timeout Duration `json:"timeout,omitempty"`
	// OnError is Fail (default) or Continue.
	// +optional
	// +kubebuilder:default=Fail
	OnError OnError `json:"onError,omitempty"`
}

// Hooks are the consistency hooks of a policy.
type Hooks struct {
	// Pre hooks run before the snapshot is created (for example fsfreeze or
	// a database checkpoint), at most 16.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Pre []Hook `json:"pre,omitempty"`
	// Post hooks run after the snapshot was created, also when a pre hook
	// failed, so that a freeze is always undone; at most 16.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Post []Hook `json:"post,omitempty"`
}

// Retention says which snapshots to keep, with restic's forget semantics:
// a snapshot is kept when any rule keeps it.
type Retention struct {
	// KeepLast keeps the newest n snapshots.
	// +optional
	// +kubebuilder:validation:Minimum=0
	KeepLast int `json:"keepLast,omitempty"`
	// Hourly keeps the newest snapshot of each of the last n hours that have one.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Hourly int `json:"hourly,omitempty"`
	// Daily keeps the newest snapshot of each of the last n days that have one.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Daily int `json:"daily,omitempty"`
	// Weekly keeps the newest snapshot of each of the last n ISO weeks that have one.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Weekly int `json:"weekly,omitempty"`
	// Monthly keeps the newest snapshot of each of the last n months that have one.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Monthly int `json:"monthly,omitempty"`
	// Yearly keeps the newest snapshot of each of the last n years that have one.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Yearly int `json:"yearly,omitempty"`
	// MaxAge deletes snapshots older than this even when a bucket rule would
	// keep them (pinned and newest-ready snapshots are still kept), as a Go
	// duration: 2160h for 90 days.
	// +optional
	MaxAge Duration `json:"maxAge,omitempty"`
}

// RestoreTest configures periodic restore tests.
type RestoreTest struct {
	// Schedule is a cron expression (in the policy's time zone), with the
	// same syntax as the policy's schedule.
	Schedule Schedule `json:"schedule"`
	// Image of the verification Job.
	Image string `json:"image"`
	// Command of the verification Job; the restored volume is mounted at /data.
	// +optional
	Command []string `json:"command,omitempty"`
	// VerificationNamespace is where the scratch PVC and the Job are created;
	// empty means the policy's namespace.
	// +optional
	VerificationNamespace string `json:"verificationNamespace,omitempty"`
}

// SnapshotPolicySpec is the desired snapshotting of a set of PVCs.
type SnapshotPolicySpec struct {
	// PVCSelector selects the PVCs of the policy's namespace to snapshot.
	PVCSelector metav1.LabelSelector `json:"pvcSelector"`
	// Schedule is a cron expression (5 fields, or a descriptor such as @hourly).
	Schedule Schedule `json:"schedule"`
	// TimeZone is an IANA time zone name for the schedule and the retention
	// buckets (default UTC). The API server checks its shape; whether the
	// zone exists is checked at reconcile (Ready=False, InvalidTimeZone).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$')",message="must be an IANA time zone name such as UTC or Europe/Berlin",reason=FieldValueInvalid
	TimeZone string `json:"timeZone,omitempty"`
	// VolumeSnapshotClassName is the VolumeSnapshotClass to use; empty uses
	// the cluster default.
	// +optional
	VolumeSnapshotClassName string `json:"volumeSnapshotClassName,omitempty"`
	// Retention says which snapshots to keep.
	// +optional
	Retention Retention `json:"retention,omitempty"`
	// Hooks run in the pods that mount the PVC.
	// +optional
	Hooks Hooks `json:"hooks,omitempty"`
	// Labels are added to every VolumeSnapshot.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Encryption is Required, Preferred (default) or Off: whether a claim
	// must be known to be encrypted at rest before it is snapshotted.
	// +optional
	// +kubebuilder:default=Preferred
	Encryption Encryption `json:"encryption,omitempty"`
	// RestoreTest, when set, periodically restores the newest snapshot and
	// verifies it with a Job.
	// +optional
	RestoreTest *RestoreTest `json:"restoreTest,omitempty"`
}

// Result values of SnapshotPolicyStatus.LastResult.
const (
	ResultSucceeded = "Succeeded"
	ResultFailed    = "Failed"
	ResultPartial   = "PartiallyFailed"
)

// SnapshotPolicyStatus is the observed state of a policy.
type SnapshotPolicyStatus struct {
	// LastRun is the slot of the last run.
	// +optional
	LastRun *metav1.Time `json:"lastRun,omitempty"`
	// LastSnapshot is the name of the newest VolumeSnapshot created.
	// +optional
	LastSnapshot string `json:"lastSnapshot,omitempty"`
	// NextRun is the next scheduled slot.
	// +optional
	NextRun *metav1.Time `json:"nextRun,omitempty"`
	// LastResult is Succeeded, Failed or PartiallyFailed.
	// +optional
	LastResult string `json:"lastResult,omitempty"`
	// LastRestoreTest is the slot of the last restore test.
	// +optional
	LastRestoreTest *metav1.Time `json:"lastRestoreTest,omitempty"`
	// LastRequest is the on-demand snapshot request (the
	// stateguard.io/snapshot-request annotation) carried out last: a value
	// is carried out once.
	// +optional
	LastRequest *SnapshotRequestStatus `json:"lastRequest,omitempty"`
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready is True (reason Scheduled) when the spec is valid and
	// the policy runs, False with the reason (InvalidSchedule,
	// InvalidTimeZone, InvalidRetention, InvalidHookTimeout,
	// InvalidRestoreTest, InvalidSelector) and a message when it does not.
	// Encrypted is True when every claim of the last run is known to be
	// encrypted at rest, False (reason NotEncrypted, or EncryptionUnknown)
	// naming the claims and the evidence otherwise; with encryption:
	// Required those claims were not snapshotted.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// SnapshotRequestStatus is the outcome of an on-demand snapshot request.
type SnapshotRequestStatus struct {
	// Request is the value of the stateguard.io/snapshot-request annotation
	// that was carried out.
	Request string `json:"request"`
	// Snapshot is the VolumeSnapshot it created; empty when it was refused.
	// +optional
	Snapshot string `json:"snapshot,omitempty"`
	// Error says why the request was refused (a malformed value, a PVC the
	// policy does not select, a failed pre hook).
	// +optional
	Error string `json:"error,omitempty"`
}

// SnapshotPolicy snapshots the PVCs it selects on a schedule, runs
// consistency hooks, applies GFS retention and tests restores.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=snappol,categories=stateguard
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Last Snapshot",type=string,JSONPath=`.status.lastSnapshot`
// +kubebuilder:printcolumn:name="Last Result",type=string,JSONPath=`.status.lastResult`,priority=1
// +kubebuilder:printcolumn:name="Next Run",type=string,JSONPath=`.status.nextRun`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SnapshotPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SnapshotPolicySpec   `json:"spec,omitempty"`
	Status SnapshotPolicyStatus `json:"status,omitempty"`
}

// SnapshotPolicyList is a list of SnapshotPolicy.
//
// +kubebuilder:object:root=true
type SnapshotPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SnapshotPolicy `json:"items"`
}
