package events

import "time"

// Every payload below is the data of one CloudEvent. Field names are
// snake_case and stable: other teams code against the JSON Schemas generated
// from these types (schemas/). Decision payloads carry Causes: the ids of the
// events that led to them, so every decision can be explained.

// ObjectRef names a namespaced Kubernetes object.
type ObjectRef struct {
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Tool is a scanner that produced SARIF results.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// SeverityCounts counts results by security severity, with GitHub's bands:
// ≥9.0 critical, 7.0–8.9 high, 4.0–6.9 medium, 0.1–3.9 low, else none.
type SeverityCounts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	None     int `json:"none"`
}

// LevelCounts counts results by SARIF level.
type LevelCounts struct {
	Error   int `json:"error"`
	Warning int `json:"warning"`
	Note    int `json:"note"`
	None    int `json:"none"`
}

// ToolCounts are the counts of one tool's results.
type ToolCounts struct {
	Tool       Tool           `json:"tool"`
	Results    int            `json:"results"`
	BySeverity SeverityCounts `json:"by_severity"`
	ByLevel    LevelCounts    `json:"by_level"`
}

// Finding is one normalised SARIF result.
type Finding struct {
	Tool        string   `json:"tool,omitempty"`
	RuleID      string   `json:"rule_id"`
	Severity    string   `json:"severity" jsonschema:"enum=critical,enum=high,enum=medium,enum=low,enum=none"`
	Level       string   `json:"level,omitempty" jsonschema:"enum=error,enum=warning,enum=note,enum=none"`
	CWEs        []string `json:"cwe,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	File        string   `json:"file,omitempty"`
	Line        int      `json:"line,omitempty"`
	Fingerprint string   `json:"fingerprint"`
	// Suppressed is set for a result the SARIF log suppresses (an accepted
	// suppression) or that GitHub reports dismissed; it is still counted in
	// by_severity and also in the upload's suppressed counts.
	Suppressed bool `json:"suppressed,omitempty" jsonschema_description:"The SARIF result has an accepted suppression, or GitHub reports the alert dismissed; it is not an open finding"`
}

// ObjectLocation is where an object (the original SARIF log) is stored in a
// JetStream Object Store.
type ObjectLocation struct {
	Bucket string `json:"bucket"`
	Name   string `json:"name"`
	Size   int64  `json:"size,omitempty"`
}

// SARIFUploaded is published once per accepted SARIF upload.
type SARIFUploaded struct {
	UploadID     string         `json:"upload_id"`
	Repository   string         `json:"repository"`
	CommitSHA    string         `json:"commit_sha"`
	Ref          string         `json:"ref"`
	Category     string         `json:"category"`
	App          string         `json:"app"`
	Namespace    string         `json:"namespace"`
	Version      string         `json:"version"`
	Environment  string         `json:"environment,omitempty"`
	Images       []string       `json:"images" jsonschema_description:"Image references with digest (repo@sha256:…) that the scan covers"`
	Tools        []Tool         `json:"tools"`
	ByTool       []ToolCounts   `json:"by_tool,omitempty"`
	ResultsTotal int            `json:"results_total"`
	BySeverity   SeverityCounts `json:"by_severity"`
	// Suppressed counts, by severity, the results of by_severity that are
	// not open (accepted SARIF suppressions, alerts GitHub reports
	// dismissed). The correlator subtracts them.
	Suppressed *SeverityCounts `json:"suppressed,omitempty" jsonschema_description:"The results of by_severity that are not open: accepted SARIF suppressions and alerts GitHub reports dismissed; the correlator subtracts them"`
	ByLevel    LevelCounts     `json:"by_level"`
	New        int             `json:"new"`
	Fixed      int             `json:"fixed"`
	Unchanged  int             `json:"unchanged"`
	// NewFindings lists the new critical and high findings against the
	// previous upload of the same (repository, category, ref), bounded.
	NewFindings          []Finding `json:"new_findings"`
	NewFindingsTruncated bool      `json:"new_findings_truncated,omitempty"`
	// Findings lists the open findings at medium severity or above, highest
	// first, bounded; the correlator reads rule ids and CWEs from them.
	Findings          []Finding      `json:"findings,omitempty"`
	FindingsTruncated bool           `json:"findings_truncated,omitempty"`
	Anomalies         int            `json:"anomalies,omitempty" jsonschema_description:"Malformed fields that were skipped while parsing"`
	Object            ObjectLocation `json:"object"`
	ReceivedAt        time.Time      `json:"received_at"`
}

// Certificate holds the facts of one X.509 certificate.
type Certificate struct {
	Subject            string    `json:"subject"`
	Issuer             string    `json:"issuer"`
	Serial             string    `json:"serial" jsonschema_description:"Serial number in lower-case hex"`
	DNSNames           []string  `json:"dns_names,omitempty"`
	IPAddresses        []string  `json:"ip_addresses,omitempty"`
	EmailAddresses     []string  `json:"email_addresses,omitempty"`
	URIs               []string  `json:"uris,omitempty"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	KeyType            string    `json:"key_type" jsonschema:"enum=RSA,enum=ECDSA,enum=Ed25519,enum=unknown"`
	KeyBits            int       `json:"key_bits,omitempty"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	IsCA               bool      `json:"is_ca,omitempty"`
	SHA256             string    `json:"sha256" jsonschema_description:"SHA-256 fingerprint of the DER bytes, hex"`
}

// CertificateSource says where a certificate was found: a Secret key in the
// cluster, or a file under a watched directory.
type CertificateSource struct {
	Namespace string `json:"namespace,omitempty"`
	Secret    string `json:"secret,omitempty"`
	Key       string `json:"key,omitempty"`
	Path      string `json:"path,omitempty"`
}

// WorkloadRef names a workload (Deployment, StatefulSet, DaemonSet, or a
// bare Pod) that uses a certificate or a volume.
type WorkloadRef = ObjectRef

// CertificateUsers are the objects that use a certificate's Secret.
type CertificateUsers struct {
	Pods      []ObjectRef   `json:"pods,omitempty"`
	Workloads []WorkloadRef `json:"workloads,omitempty"`
	Ingresses []ObjectRef   `json:"ingresses,omitempty"`
}

// CertManagerInfo is set when a cert-manager Certificate owns the Secret.
type CertManagerInfo struct {
	Certificate string     `json:"certificate"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
	RenewalTime *time.Time `json:"renewal_time,omitempty"`
}

// CertificateExpiring is published once per certificate and threshold.
type CertificateExpiring struct {
	Source      CertificateSource `json:"source"`
	Threshold   string            `json:"threshold" jsonschema_description:"The threshold crossed: a duration such as 30d or 7d, or expired"`
	DaysLeft    float64           `json:"days_left"`
	Certificate Certificate       `json:"certificate"`
	Chain       []Certificate     `json:"chain,omitempty"`
	Weaknesses  []string          `json:"weaknesses,omitempty" jsonschema_description:"For example rsa-key-too-small or sha1-signature"`
	Users       CertificateUsers  `json:"users"`
	CertManager *CertManagerInfo  `json:"cert_manager,omitempty"`
}

// CertificateRotationRequested asks certwatcher to rotate the certificate in a
// Secret.
type CertificateRotationRequested struct {
	RequestID string   `json:"request_id"`
	Namespace string   `json:"namespace"`
	Secret    string   `json:"secret"`
	Reason    string   `json:"reason"`
	App       string   `json:"app,omitempty"`
	Incident  string   `json:"incident,omitempty"`
	DryRun    bool     `json:"dry_run,omitempty"`
	Causes    []string `json:"causes,omitempty"`
	Actor     string   `json:"actor,omitempty" jsonschema_description:"Who asked for it when an operator did (the name of the operator token used); empty for the correlator's own decisions"`
}

// TLSVerification is the result of checking the certificate a Service serves.
type TLSVerification struct {
	Checked      bool   `json:"checked"`
	Service      string `json:"service,omitempty"`
	Port         int    `json:"port,omitempty"`
	ServedSerial string `json:"served_serial,omitempty"`
	Match        bool   `json:"match"`
	Error        string `json:"error,omitempty"`
}

// CertificateRotated reports a completed rotation.
type CertificateRotated struct {
	RequestID    string          `json:"request_id"`
	Namespace    string          `json:"namespace"`
	Secret       string          `json:"secret"`
	Method       string          `json:"method" jsonschema:"enum=cert-manager,enum=in-cluster-ca"`
	OldSerial    string          `json:"old_serial"`
	NewSerial    string          `json:"new_serial"`
	Rolled       []WorkloadRef   `json:"rolled,omitempty"`
	Paused       []WorkloadRef   `json:"paused,omitempty"`
	Verification TLSVerification `json:"verification"`
	DryRun       bool            `json:"dry_run,omitempty"`
	Causes       []string        `json:"causes,omitempty"`
}

// CertificateRotationFailed reports a rotation that was not carried out.
type CertificateRotationFailed struct {
	RequestID string   `json:"request_id"`
	Namespace string   `json:"namespace"`
	Secret    string   `json:"secret"`
	Reason    string   `json:"reason"`
	Causes    []string `json:"causes,omitempty"`
}

// Container is one container of a pod, with the digest it runs.
type Container struct {
	Name    string `json:"name"`
	Image   string `json:"image"`
	ImageID string `json:"image_id,omitempty" jsonschema_description:"status.containerStatuses[].imageID"`
	Digest  string `json:"digest,omitempty" jsonschema_description:"sha256:… taken from the imageID"`
}

// VolumeWorkload is a pod that mounted a volume when it was snapshotted.
type VolumeWorkload struct {
	Pod        string      `json:"pod"`
	Owner      *ObjectRef  `json:"owner,omitempty"`
	App        string      `json:"app,omitempty" jsonschema_description:"app.kubernetes.io/name"`
	Version    string      `json:"version,omitempty" jsonschema_description:"app.kubernetes.io/version"`
	Containers []Container `json:"containers"`
	// Annotations are the pod's join annotations, as ObservedPod's.
	Annotations map[string]string `json:"annotations,omitempty" jsonschema_description:"The pod's join annotations, when set: stateguard.io/repository, stateguard.io/sarif-category, stateguard.io/commit, org.opencontainers.image.source, org.opencontainers.image.revision"`
}

// SnapshotCompleted reports a VolumeSnapshot that became ready to use.
type SnapshotCompleted struct {
	Namespace             string     `json:"namespace"`
	PVC                   string     `json:"pvc"`
	VolumeSnapshot        string     `json:"volume_snapshot"`
	VolumeSnapshotContent string     `json:"volume_snapshot_content,omitempty"`
	VolumeSnapshotClass   string     `json:"volume_snapshot_class,omitempty"`
	RestoreSize           string     `json:"restore_size,omitempty"`
	CreationTime          time.Time  `json:"creation_time"`
	Policy                string     `json:"policy,omitempty"`
	Slot                  *time.Time `json:"slot,omitempty" jsonschema_description:"The policy's schedule slot the snapshot was taken for; absent for a snapshot no policy scheduled (a Restore's safety snapshot)"`
	// Workloads are a sample of the claim's lineage: the pods that mounted
	// it when the snapshot was cut.
	Workloads []VolumeWorkload `json:"workloads" jsonschema_description:"The pods that mounted the claim when the snapshot was cut; an empty list says nothing mounted it (an idle volume), so a producer that does not know what ran should not send one"`
	// Encryption is what the snapshotter found about the snapshot's
	// encryption at rest when it took it; absent in events from before the
	// check existed, which consumers read as unknown.
	Encryption string `json:"encryption,omitempty" jsonschema:"enum=encrypted,enum=unencrypted,enum=unknown"`
	// EncryptionEvidence says what the finding rests on: the class, the
	// driver and the parameter, or why nothing could be said.
	EncryptionEvidence []string `json:"encryption_evidence,omitempty"`
}

// The values of SnapshotCompleted.Encryption.
const (
	EncryptionEncrypted   = "encrypted"
	EncryptionUnencrypted = "unencrypted"
	EncryptionUnknown     = "unknown"
)

// SnapshotFailed reports a snapshot that failed.
type SnapshotFailed struct {
	Namespace      string     `json:"namespace"`
	PVC            string     `json:"pvc"`
	VolumeSnapshot string     `json:"volume_snapshot,omitempty"`
	Policy         string     `json:"policy,omitempty"`
	Slot           *time.Time `json:"slot,omitempty"`
	Error          string     `json:"error"`
	// Reason is a machine-readable cause when there is one:
	// EncryptionRequired (the policy requires encryption at rest and the
	// claim is not known to be encrypted; no snapshot was taken).
	Reason string `json:"reason,omitempty" jsonschema_description:"A machine-readable cause when there is one, such as EncryptionRequired"`
}

// SnapshotFailedEncryptionRequired is the SnapshotFailed.Reason of a claim
// not snapshotted because its policy requires encryption at rest.
const SnapshotFailedEncryptionRequired = "EncryptionRequired"

// SnapshotMissed lists scheduled slots that passed while no snapshotter ran.
type SnapshotMissed struct {
	Namespace string      `json:"namespace"`
	Policy    string      `json:"policy"`
	Slots     []time.Time `json:"slots"`
	CatchUp   time.Time   `json:"catch_up" jsonschema_description:"The slot of the single catch-up snapshot taken instead"`
}

// SnapshotVerified reports a restore test.
type SnapshotVerified struct {
	Namespace      string    `json:"namespace"`
	PVC            string    `json:"pvc"`
	VolumeSnapshot string    `json:"volume_snapshot"`
	Policy         string    `json:"policy,omitempty"`
	Passed         bool      `json:"passed"`
	Job            ObjectRef `json:"job"`
	Message        string    `json:"message,omitempty"`
}

// SnapshotPinRequested asks the snapshotter to keep a snapshot whatever its
// retention says.
type SnapshotPinRequested struct {
	Namespace      string   `json:"namespace"`
	VolumeSnapshot string   `json:"volume_snapshot"`
	PVC            string   `json:"pvc,omitempty"`
	Reason         string   `json:"reason"`
	Incident       string   `json:"incident,omitempty"`
	Causes         []string `json:"causes,omitempty"`
}

// SnapshotUnpinRequested releases a pin.
type SnapshotUnpinRequested struct {
	Namespace      string   `json:"namespace"`
	VolumeSnapshot string   `json:"volume_snapshot"`
	PVC            string   `json:"pvc,omitempty"`
	Reason         string   `json:"reason"`
	Incident       string   `json:"incident,omitempty"`
	Causes         []string `json:"causes,omitempty"`
}

// Reason is one finding behind a decision, with the event it came from.
type Reason struct {
	UploadID   string   `json:"upload_id,omitempty"`
	EventID    string   `json:"event_id"`
	Version    string   `json:"version,omitempty"`
	RuleIDs    []string `json:"rule_ids,omitempty"`
	Severities []string `json:"severities,omitempty"`
	Text       string   `json:"text"`
}

// RestoreRecommended recommends restoring a PVC from a known-good snapshot.
type RestoreRecommended struct {
	Incident       string    `json:"incident"`
	Namespace      string    `json:"namespace"`
	App            string    `json:"app"`
	PVC            string    `json:"pvc"`
	VolumeSnapshot string    `json:"volume_snapshot"`
	SnapshotTime   time.Time `json:"snapshot_time"`
	Versions       []string  `json:"versions" jsonschema_description:"The vulnerable versions (digests) now running"`
	Reasons        []Reason  `json:"reasons"`
	Manifest       string    `json:"manifest" jsonschema_description:"Ready-to-apply YAML: a PVC restored from the snapshot"`
	Steps          []string  `json:"steps,omitempty"`
	Causes         []string  `json:"causes"`
	// Revision counts the recommendations of this incident and PVC, from
	// 1; Supersedes is the id of the one this replaces (a better restore
	// point became known). Only the newest revision is current.
	Revision   int           `json:"revision,omitempty" jsonschema_description:"1 for the first recommendation of this incident and PVC; one more for each that supersedes it"`
	Supersedes string        `json:"supersedes,omitempty" jsonschema_description:"The event id of the recommendation this one replaces"`
	Lineage    []LineageSpan `json:"lineage,omitempty" jsonschema_description:"Every version that wrote to the PVC's data since its lineage began: the reasons the snapshot is the restore point"`
}

// LineageSpan is one version that wrote to a volume's data, and when.
type LineageSpan struct {
	PVC     string     `json:"pvc"`
	App     string     `json:"app"`
	Version string     `json:"version"`
	Verdict string     `json:"verdict" jsonschema:"enum=vulnerable,enum=clean,enum=unknown"`
	From    time.Time  `json:"from" jsonschema_description:"The first observation (workload.observed or snapshot.completed) that shows the version on the volume"`
	To      *time.Time `json:"to,omitempty" jsonschema_description:"The first observation that no longer shows it; absent while it runs"`
	Via     string     `json:"via,omitempty" jsonschema_description:"The snapshot a restore inherited this span from"`
	Note    string     `json:"note,omitempty"`
}

// IncidentOpened reports that an application runs a vulnerable version.
type IncidentOpened struct {
	Incident  string        `json:"incident"`
	Namespace string        `json:"namespace"`
	App       string        `json:"app"`
	Versions  []string      `json:"versions"`
	Reasons   []Reason      `json:"reasons"`
	Causes    []string      `json:"causes"`
	Lineage   []LineageSpan `json:"lineage,omitempty" jsonschema_description:"The vulnerable versions that wrote to the app's volumes, and when"`
}

// IncidentClosed reports that an incident is over.
type IncidentClosed struct {
	Incident  string   `json:"incident"`
	Namespace string   `json:"namespace"`
	App       string   `json:"app"`
	Reason    string   `json:"reason"`
	Causes    []string `json:"causes"`
}

// ObservedPod is a pod that mounts an observed PVC.
type ObservedPod struct {
	Pod        string      `json:"pod"`
	Owner      *ObjectRef  `json:"owner,omitempty" jsonschema_description:"The workload that owns the pod (Deployment, StatefulSet, DaemonSet, Job), resolved through its ReplicaSet"`
	App        string      `json:"app,omitempty" jsonschema_description:"app.kubernetes.io/name"`
	Version    string      `json:"version,omitempty" jsonschema_description:"app.kubernetes.io/version"`
	Labels     []string    `json:"labels,omitempty" jsonschema_description:"Other app.kubernetes.io/* labels, as key=value"`
	Containers []Container `json:"containers"`
	StartedAt  *time.Time  `json:"started_at,omitempty" jsonschema_description:"When the pod started, from its status"`
	// Secrets are the TLS Secrets the pod mounts (volumes, projected
	// volumes, env and envFrom), sorted.
	Secrets []string `json:"secrets,omitempty" jsonschema_description:"TLS Secrets the pod mounts: volumes, projected volumes, env and envFrom; sorted"`
	// Annotations are the pod's join annotations (JoinAnnotations): the
	// repository and commit its code came from, which tie an upload that
	// names no application (GitHub's uploaders) to this pod.
	Annotations map[string]string `json:"annotations,omitempty" jsonschema_description:"The pod's join annotations, when set: stateguard.io/repository, stateguard.io/sarif-category, stateguard.io/commit, org.opencontainers.image.source, org.opencontainers.image.revision"`
}

// The pod annotations that join a SARIF upload naming no application to
// the workload that runs its code. The OCI keys are the image annotations
// of the OCI image spec, copied onto the pod template by the deployment
// (the API server does not see an image's own labels).
const (
	AnnotationRepository    = "stateguard.io/repository"          // owner/name, as uploads name it
	AnnotationSARIFCategory = "stateguard.io/sarif-category"      // only uploads of this category join
	AnnotationCommit        = "stateguard.io/commit"              // the commit SHA the version was built from
	AnnotationImageSource   = "org.opencontainers.image.source"   // URL of the source repository
	AnnotationImageRevision = "org.opencontainers.image.revision" // the commit SHA
)

// JoinAnnotations are the annotations ObservedPod.Annotations carries.
var JoinAnnotations = []string{AnnotationRepository, AnnotationSARIFCategory, AnnotationCommit, AnnotationImageSource, AnnotationImageRevision}

// WorkloadObserved is published whenever the set of pods mounting a PVC
// selected by a SnapshotPolicy changes (a pod with a new image digest
// starts, the last pod of a version stops), and again on every resync.
// Its event id is ObservationID: the same observation, resent, has the
// same id.
type WorkloadObserved struct {
	Namespace string `json:"namespace"`
	PVC       string `json:"pvc"`
	// ObservedAt is when this set of pods was first seen; a resync of an
	// unchanged set repeats it (and so its id).
	ObservedAt time.Time     `json:"observed_at" jsonschema_description:"When this set of pods was first seen; a resync of an unchanged set repeats it, and so its event id"`
	Pods       []ObservedPod `json:"pods" jsonschema_description:"Every pod mounting the PVC now; empty when none does (the volume is idle)"`
	Resync     bool          `json:"resync,omitempty" jsonschema_description:"Published by a full resync (start-up or periodic), not by a change"`
}

// CertificateObserved is certwatcher's inventory: published on the first
// sight of a certificate and whenever its users or serial change, whatever
// its expiry.
type CertificateObserved struct {
	Source      CertificateSource `json:"source"`
	Certificate Certificate       `json:"certificate"`
	DaysLeft    float64           `json:"days_left"`
	Users       CertificateUsers  `json:"users"`
	CertManager *CertManagerInfo  `json:"cert_manager,omitempty"`
	ObservedAt  time.Time         `json:"observed_at"`
}

// RestoreCompleted reports a PVC restored from a snapshot. The restored
// claim inherits the snapshot's lineage: the versions that wrote to the
// data up to the snapshot's time, then whatever runs on it from now on.
type RestoreCompleted struct {
	RestoreID      string `json:"restore_id"`
	Namespace      string `json:"namespace"`
	PVC            string `json:"pvc" jsonschema_description:"The claim that now holds the restored data (the same name as before, or a new claim)"`
	VolumeSnapshot string `json:"volume_snapshot" jsonschema_description:"The VolumeSnapshot the data was restored from"`
	SnapshotPVC    string `json:"snapshot_pvc,omitempty" jsonschema_description:"The PVC the snapshot was taken of, when it differs from pvc"`
	// SnapshotTime is the restored snapshot's creation time, the same time
	// its snapshot.completed carries as creation_time: the restored data
	// holds what its PVC's lineage held up to then, which a consumer can
	// rebuild from that lineage even when it no longer remembers the
	// snapshot itself. Absent in events of producers from before the field.
	SnapshotTime *time.Time `json:"snapshot_time,omitempty" jsonschema_description:"The restored snapshot's creation time, as its snapshot.completed's creation_time: the restored data holds what the snapshot's PVC held up to then. Absent in events from producers that predate the field"`
	PV           string     `json:"pv,omitempty" jsonschema_description:"The new PersistentVolume bound to the claim"`
	Incident     string     `json:"incident,omitempty" jsonschema_description:"The incident the restore answers, if any"`
	// CompletedAt is when the claim was bound to the restored volume and
	// its workloads resumed: the start of its new lineage.
	CompletedAt time.Time `json:"completed_at" jsonschema_description:"When the claim was bound to the restored volume and its workloads resumed: the start of its new lineage"`
	// The fields below are set by the snapshotter's Restore executor.
	Restore        string `json:"restore,omitempty" jsonschema_description:"The Restore (stateguard.io/v1alpha1) that carried the restore out"`
	RequestID      string `json:"request_id,omitempty" jsonschema_description:"The restore.requested event's request id, when the restore was requested through it"`
	SafetySnapshot string `json:"safety_snapshot,omitempty" jsonschema_description:"The VolumeSnapshot of the claim's data taken before it was replaced"`
	OldPV          string `json:"old_pv,omitempty" jsonschema_description:"The PersistentVolume the claim was bound to before the restore; it is retained"`
}

// RestoreRequested asks the snapshotter to restore a claim in place
// (published by the correlator's API for an operator). The snapshotter
// creates the Restore named RestoreName(RequestID).
type RestoreRequested struct {
	RequestID   string    `json:"request_id" jsonschema_description:"Deterministic id of the request: a retried request carries the same id and creates one Restore"`
	Namespace   string    `json:"namespace"`
	PVC         string    `json:"pvc,omitempty" jsonschema_description:"The claim to restore; empty means the snapshot's source claim"`
	IncidentID  string    `json:"incident_id,omitempty" jsonschema_description:"The incident whose recommendation the restore follows, if any"`
	Snapshot    string    `json:"snapshot" jsonschema_description:"The VolumeSnapshot to restore from, in the same namespace (the incident's recommended snapshot when the request named none)"`
	Actor       string    `json:"actor" jsonschema_description:"Who asked: the name of the operator token used"`
	Reason      string    `json:"reason,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
}

// RestoreStarted reports that a Restore began: its claim, snapshot and
// workloads were checked and nothing has changed yet.
type RestoreStarted struct {
	Namespace  string      `json:"namespace"`
	PVC        string      `json:"pvc"`
	Restore    string      `json:"restore" jsonschema_description:"The Restore (stateguard.io/v1alpha1)"`
	RequestID  string      `json:"request_id,omitempty"`
	IncidentID string      `json:"incident_id,omitempty"`
	Snapshot   string      `json:"snapshot" jsonschema_description:"The VolumeSnapshot restored from"`
	Workloads  []ObjectRef `json:"workloads,omitempty" jsonschema_description:"The workloads stopped and started again"`
	OldPV      string      `json:"old_pv,omitempty"`
	StartedAt  time.Time   `json:"started_at"`
}

// RestoreProgressed reports that a Restore entered a phase.
type RestoreProgressed struct {
	Namespace  string    `json:"namespace"`
	PVC        string    `json:"pvc"`
	Restore    string    `json:"restore"`
	RequestID  string    `json:"request_id,omitempty"`
	IncidentID string    `json:"incident_id,omitempty"`
	Snapshot   string    `json:"snapshot"`
	Phase      string    `json:"phase" jsonschema_description:"The phase entered: SafetySnapshot, ScalingDown, Restoring, Verifying, ScalingUp or RollingBack"`
	Message    string    `json:"message,omitempty"`
	At         time.Time `json:"at"`
}

// RestoreFailed reports a Restore that did not complete, and whether the
// claim was put back on its old volume.
type RestoreFailed struct {
	Namespace      string    `json:"namespace"`
	PVC            string    `json:"pvc"`
	Restore        string    `json:"restore"`
	RequestID      string    `json:"request_id,omitempty"`
	IncidentID     string    `json:"incident_id,omitempty"`
	Snapshot       string    `json:"snapshot"`
	Phase          string    `json:"phase" jsonschema_description:"The phase that failed"`
	Reason         string    `json:"reason" jsonschema_description:"Why, as a person can act on it"`
	RolledBack     bool      `json:"rolled_back" jsonschema_description:"True when the claim was replaced and has been put back on its old volume, with the workloads started again; false when nothing had changed"`
	SafetySnapshot string    `json:"safety_snapshot,omitempty"`
	OldPV          string    `json:"old_pv,omitempty"`
	NewPV          string    `json:"new_pv,omitempty"`
	FailedAt       time.Time `json:"failed_at"`
}

// IncidentResolved is an operator's decision that an incident is over
// without a restore ("not exploited: the endpoint was never exposed").
type IncidentResolved struct {
	Incident   string    `json:"incident"`
	Namespace  string    `json:"namespace"`
	App        string    `json:"app,omitempty"`
	Reason     string    `json:"reason"`
	Actor      string    `json:"actor" jsonschema_description:"Who resolved it: the name of the operator token used"`
	ResolvedAt time.Time `json:"resolved_at"`
}

// FindingDismissed is an operator's decision that a finding is a false
// positive: it no longer counts towards a version's verdict.
type FindingDismissed struct {
	Namespace   string    `json:"namespace"`
	App         string    `json:"app"`
	RuleID      string    `json:"rule_id"`
	Fingerprint string    `json:"fingerprint,omitempty" jsonschema_description:"The finding's fingerprint; empty dismisses every finding of the rule for the app"`
	Reason      string    `json:"reason"`
	Actor       string    `json:"actor" jsonschema_description:"Who dismissed it: the name of the operator token used"`
	DismissedAt time.Time `json:"dismissed_at"`
}

// ReportGenerated announces a review-cycle report: what happened to the
// applications' snapshots, restore tests, certificates, incidents and
// findings between Since and Until, stored as Markdown and HTML in a
// JetStream Object Store.
type ReportGenerated struct {
	ReportID   string         `json:"report_id" jsonschema_description:"report-<until, RFC 3339 basic>: a second replica generating the same period publishes the same id"`
	Since      time.Time      `json:"since"`
	Until      time.Time      `json:"until"`
	Namespace  string         `json:"namespace,omitempty" jsonschema_description:"The namespace the report covers; empty for every namespace"`
	Markdown   ObjectLocation `json:"markdown"`
	HTML       ObjectLocation `json:"html"`
	Apps       int            `json:"apps" jsonschema_description:"Applications in the report"`
	Attention  []string       `json:"attention,omitempty" jsonschema_description:"One line per point the review should look at first (an unencrypted known-good, a failed restore test, an incident still open, a certificate about to expire)"`
	Scheduled  bool           `json:"scheduled,omitempty" jsonschema_description:"Generated by the correlator's schedule, not asked for"`
	RulesInUse string         `json:"rules_version,omitempty" jsonschema_description:"The version of the correlator's rules file when the report was made"`
}
