package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RestoreResource is the plural resource name of Restore.
const RestoreResource = "restores"

// RestorePhase is where a Restore stands. A Restore moves forward through
// Pending, SafetySnapshot, ScalingDown, Restoring, Verifying (the restored
// claim checked while its workloads are still stopped) and ScalingUp to
// Completed; a failure ends it Failed when nothing had been changed yet,
// or goes through RollingBack to RolledBack (the claim bound to its old
// volume again, the workloads scaled back) when something had.
//
// +kubebuilder:validation:Enum=Pending;SafetySnapshot;ScalingDown;Restoring;Verifying;ScalingUp;Completed;RollingBack;RolledBack;Failed
type RestorePhase string

// The phases of a Restore.
const (
	RestorePending        RestorePhase = "Pending"
	RestoreSafetySnapshot RestorePhase = "SafetySnapshot"
	RestoreScalingDown    RestorePhase = "ScalingDown"
	RestoreRestoring      RestorePhase = "Restoring"
	RestoreVerifying      RestorePhase = "Verifying"
	RestoreScalingUp      RestorePhase = "ScalingUp"
	RestoreCompleted      RestorePhase = "Completed"
	RestoreRollingBack    RestorePhase = "RollingBack"
	RestoreRolledBack     RestorePhase = "RolledBack"
	RestoreFailed         RestorePhase = "Failed"
)

// Terminal reports whether p is an end state.
func (p RestorePhase) Terminal() bool {
	return p == RestoreCompleted || p == RestoreRolledBack || p == RestoreFailed
}

// WorkloadRef names a workload of the Restore's namespace.
type WorkloadRef struct {
	// Kind is Deployment, StatefulSet or ReplicaSet.
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;ReplicaSet
	Kind string `json:"kind"`
	// Name of the workload.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// RestoreVerification is a Job run on the restored claim (mounted at /data
// in every container) before the workloads start again: the Job is then
// the claim's only user, so it works for ReadWriteOnce and
// ReadWriteOncePod claims, and it sees the data exactly as restored. The
// workloads start when it succeeds; the restore rolls back when it fails
// or times out.
type RestoreVerification struct {
	// Template is the Job's spec; the executor adds the claim as volume
	// "data" mounted at /data in every container.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Template batchv1.JobSpec `json:"template"`
	// Timeout bounds the Job, as a Go duration (default 10m).
	// +optional
	Timeout Duration `json:"timeout,omitempty"`
}

// RestoreSpec is what to restore, where, and how.
//
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a Restore's spec cannot change; create another Restore"
// +kubebuilder:validation:XValidation:rule="has(self.volumeSnapshot) || has(self.incident)",message="name the volumeSnapshot to restore, or the incident whose recommended snapshot to restore"
type RestoreSpec struct {
	// VolumeSnapshot is the snapshot to restore, in the Restore's namespace.
	// Empty: the snapshot the incident's current recommendation (the
	// newest restore.recommended revision for the incident and the PVC)
	// names when the Restore starts.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	VolumeSnapshot string `json:"volumeSnapshot,omitempty"`
	// Incident is the incident whose recommendation the Restore follows,
	// if any; it is carried into the restore events.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Incident string `json:"incident,omitempty"`
	// PVC is the claim to restore in place; empty means the snapshot's
	// source claim.
	// +optional
	PVC string `json:"pvc,omitempty"`
	// Workloads to stop and start; empty means every workload whose pods
	// mount the claim (a bare pod is refused: nothing would start it again).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Workloads []WorkloadRef `json:"workloads,omitempty"`
	// SafetySnapshot takes a snapshot of the claim before anything changes
	// (default true).
	// +optional
	SafetySnapshot *bool `json:"safetySnapshot,omitempty"`
	// SafetySnapshotTTL is how long the safety snapshot stays pinned after
	// the Restore ended, as a Go duration (default: the snapshotter's
	// --restore-safety-snapshot-ttl, 168h). After it, the snapshotter
	// deletes the safety snapshot unless something else pins it (a pin
	// request, such as the correlator's pin of a known-good snapshot, or a
	// pin by hand) or a running Restore restores from it.
	// +optional
	SafetySnapshotTTL Duration `json:"safetySnapshotTTL,omitempty"`
	// Verification, when set, runs a Job on the restored claim.
	// +optional
	Verification *RestoreVerification `json:"verification,omitempty"`
	// Deadline bounds the whole restore before rolling back, as a Go
	// duration (default 30m).
	// +optional
	Deadline Duration `json:"deadline,omitempty"`
	// RequestID is the restore.requested event's request id, when the
	// Restore was requested through the event.
	// +optional
	RequestID string `json:"requestID,omitempty"`
	// Actor is who asked for the restore.
	// +optional
	Actor string `json:"actor,omitempty"`
	// Reason is why.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
}

// RestoreWorkload is a workload the Restore stopped, and the replicas it
// had.
type RestoreWorkload struct {
	WorkloadRef `json:",inline"`
	// Replicas the workload had before the restore scaled it to 0.
	Replicas int32 `json:"replicas"`
}

// ClaimTemplate is what the Restore keeps of the original claim, to create
// its replacement after the original is gone.
type ClaimTemplate struct {
	// UID of the original claim.
	UID string `json:"uid"`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
	// +optional
	AccessModes []string `json:"accessModes,omitempty"`
	// Storage is the requested size.
	Storage string `json:"storage"`
	// +optional
	VolumeMode *string `json:"volumeMode,omitempty"`
}

// RecommendationRef is the restore.recommended event a Restore followed.
type RecommendationRef struct {
	// Revision of the incident's recommendation for the claim (1 for the
	// first; one more for each that superseded it).
	Revision int `json:"revision"`
	// EventID is the restore.recommended event's id.
	EventID string `json:"eventID"`
	// VolumeSnapshot is the snapshot it recommended.
	VolumeSnapshot string `json:"volumeSnapshot"`
	// PVC is the claim it is for.
	PVC string `json:"pvc"`
}

// PhaseTime is when a Restore entered a phase.
type PhaseTime struct {
	Phase RestorePhase `json:"phase"`
	At    metav1.Time  `json:"at"`
	// +optional
	Message string `json:"message,omitempty"`
}

// RestoreStatus is where the Restore stands; every step reads and writes
// it, so a restarted snapshotter carries on where it stopped.
type RestoreStatus struct {
	// Phase is the current phase.
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`
	// Message says what happens now, or what went wrong and what to do.
	// +optional
	Message string `json:"message,omitempty"`
	// PVC is the claim restored.
	// +optional
	PVC string `json:"pvc,omitempty"`
	// VolumeSnapshot is the snapshot restored: spec.volumeSnapshot, or the
	// one the incident's recommendation named when the Restore started.
	// +optional
	VolumeSnapshot string `json:"volumeSnapshot,omitempty"`
	// Recommendation is the incident's recommendation the Restore
	// followed, when spec.volumeSnapshot is empty.
	// +optional
	Recommendation *RecommendationRef `json:"recommendation,omitempty"`
	// SafetySnapshot is the VolumeSnapshot of the claim taken first.
	// +optional
	SafetySnapshot string `json:"safetySnapshot,omitempty"`
	// SafetySnapshotExpiresAt is when the safety snapshot's pin ends (the
	// Restore's end plus its TTL); absent while the Restore runs.
	// +optional
	SafetySnapshotExpiresAt *metav1.Time `json:"safetySnapshotExpiresAt,omitempty"`
	// OldPV is the volume the claim was bound to before; it is kept
	// (Retain).
	// +optional
	OldPV string `json:"oldPV,omitempty"`
	// NewPV is the volume holding the restored data.
	// +optional
	NewPV string `json:"newPV,omitempty"`
	// Claim is what was kept of the original claim.
	// +optional
	Claim *ClaimTemplate `json:"claim,omitempty"`
	// Workloads are the workloads stopped, with their replicas.
	// +optional
	Workloads []RestoreWorkload `json:"workloads,omitempty"`
	// FailedPhase is the phase that failed, when the restore failed.
	// +optional
	FailedPhase RestorePhase `json:"failedPhase,omitempty"`
	// FailureReason is a one-word reason of the failure.
	// +optional
	FailureReason string `json:"failureReason,omitempty"`
	// StartTime is when the restore started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// CompletionTime is when it ended (Completed, RolledBack or Failed).
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Phases lists every phase entered, with its time.
	// +optional
	Phases []PhaseTime `json:"phases,omitempty"`
	// Conditions: Succeeded is True once Completed, False once RolledBack
	// or Failed (with the reason).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Restore restores a claim in place from a VolumeSnapshot: a safety
// snapshot first, the workloads stopped, the claim replaced by one of the
// same name filled from the snapshot, the workloads started and verified;
// a failure puts the old volume back.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=stateguard
// +kubebuilder:printcolumn:name="PVC",type=string,JSONPath=`.status.pvc`
// +kubebuilder:printcolumn:name="Snapshot",type=string,JSONPath=`.status.volumeSnapshot`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Safety Snapshot",type=string,JSONPath=`.status.safetySnapshot`,priority=1
// +kubebuilder:printcolumn:name="New PV",type=string,JSONPath=`.status.newPV`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Restore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RestoreSpec   `json:"spec,omitempty"`
	Status RestoreStatus `json:"status,omitempty"`
}

// RestoreList is a list of Restore.
//
// +kubebuilder:object:root=true
type RestoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Restore `json:"items"`
}
