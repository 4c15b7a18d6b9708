package events

import (
	"fmt"
	"strings"
)

// Event types. Every type is versioned; a breaking change to a payload gets a
// new type (…v2) and both are published for a deprecation period.
const (
	TypeSARIFUploaded              = "io.stateguard.sarif.uploaded.v1"
	TypeCertificateExpiring        = "io.stateguard.certificate.expiring.v1"
	TypeCertificateRotationRequest = "io.stateguard.certificate.rotation.requested.v1"
	TypeCertificateRotated         = "io.stateguard.certificate.rotated.v1"
	TypeCertificateRotationFailed  = "io.stateguard.certificate.rotation.failed.v1"
	TypeSnapshotCompleted          = "io.stateguard.snapshot.completed.v1"
	TypeSnapshotFailed             = "io.stateguard.snapshot.failed.v1"
	TypeSnapshotMissed             = "io.stateguard.snapshot.missed.v1"
	TypeSnapshotVerified           = "io.stateguard.snapshot.verified.v1"
	TypeSnapshotPinRequested       = "io.stateguard.snapshot.pin.requested.v1"
	TypeSnapshotUnpinRequested     = "io.stateguard.snapshot.unpin.requested.v1"
	TypeRestoreRecommended         = "io.stateguard.restore.recommended.v1"
	TypeIncidentOpened             = "io.stateguard.incident.opened.v1"
	TypeIncidentClosed             = "io.stateguard.incident.closed.v1"
	TypeWorkloadObserved           = "io.stateguard.workload.observed.v1"
	TypeCertificateObserved        = "io.stateguard.certificate.observed.v1"
	TypeRestoreCompleted           = "io.stateguard.restore.completed.v1"
	TypeIncidentResolved           = "io.stateguard.incident.resolved.v1"
	TypeFindingDismissed           = "io.stateguard.finding.dismissed.v1"
	TypeRestoreRequested           = "io.stateguard.restore.requested.v1"
	TypeRestoreStarted             = "io.stateguard.restore.started.v1"
	TypeRestoreProgressed          = "io.stateguard.restore.progressed.v1"
	TypeRestoreFailed              = "io.stateguard.restore.failed.v1"
	TypeReportGenerated            = "io.stateguard.report.generated.v1"
)

// ExtRulesVersion is the CloudEvents extension attribute every decision of
// the correlator carries: the version (sha256:<hex> of the rules file, of
// the empty file for the default rules) of the rules it was decided under,
// so an audit's replay applies the rules then in force.
const ExtRulesVersion = "rulesversion"

// Stream names, one per domain, plus the dead-letter stream.
const (
	StreamSARIF       = "SARIF"
	StreamCertificate = "CERTIFICATE"
	StreamSnapshot    = "SNAPSHOT"
	StreamDecision    = "DECISION"
	StreamDeadLetter  = "DEADLETTER"
)

// SubjectPrefix starts every subject stateguard publishes on.
const SubjectPrefix = "stateguard."

// DeadLetterPrefix starts the subjects of dead letters:
// stateguard.deadletter.<stream>.<consumer>.
const DeadLetterPrefix = SubjectPrefix + "deadletter."

// Spec describes one event type of the catalogue.
type Spec struct {
	// Type is the CloudEvents type attribute.
	Type string
	// Payload is a zero value of the Go type carried as the event data.
	Payload any
	// Producer is the service that publishes the event.
	Producer string
	// Consumers are the services that act on it.
	Consumers []string
	// Description says in one sentence when the event is published.
	Description string
}

// Subject is the NATS subject the event is published on.
func (s Spec) Subject() string { return SubjectOf(s.Type) }

// Stream is the JetStream stream that stores the event.
func (s Spec) Stream() string { return StreamOf(s.Type) }

// Schema is the file name of the payload's JSON Schema under schemas/.
func (s Spec) Schema() string { return schemaName(s.Type) }

// Catalogue lists every event type stateguard publishes. The README's event
// table and the JSON Schemas under schemas/ are generated from it.
var Catalogue = []Spec{
	{TypeSARIFUploaded, SARIFUploaded{}, "sastingest", []string{"correlator"}, "A SARIF log was accepted, stored and summarised."},
	{TypeCertificateExpiring, CertificateExpiring{}, "certwatcher", []string{"correlator"}, "A certificate crossed an expiry threshold, or is weak or expired."},
	{TypeCertificateRotationRequest, CertificateRotationRequested{}, "correlator", []string{"certwatcher"}, "A certificate should be rotated (expiry or possible key exposure)."},
	{TypeCertificateRotated, CertificateRotated{}, "certwatcher", []string{"correlator"}, "A certificate was re-issued, its workloads rolled and the served certificate checked."},
	{TypeCertificateRotationFailed, CertificateRotationFailed{}, "certwatcher", []string{"correlator"}, "A requested rotation was not carried out, with the reason."},
	{TypeSnapshotCompleted, SnapshotCompleted{}, "snapshotter", []string{"correlator"}, "A VolumeSnapshot is ready to use; it names the workloads running on the volume when it was taken."},
	{TypeSnapshotFailed, SnapshotFailed{}, "snapshotter", []string{"correlator"}, "A VolumeSnapshot could not be taken or never became ready."},
	{TypeSnapshotMissed, SnapshotMissed{}, "snapshotter", nil, "Scheduled slots passed while the snapshotter was down; one catch-up snapshot replaces them."},
	{TypeSnapshotVerified, SnapshotVerified{}, "snapshotter", []string{"correlator"}, "A restore test of a snapshot passed or failed."},
	{TypeSnapshotPinRequested, SnapshotPinRequested{}, "correlator", []string{"snapshotter"}, "A snapshot must be kept: it is a known-good restore point."},
	{TypeSnapshotUnpinRequested, SnapshotUnpinRequested{}, "correlator", []string{"snapshotter"}, "A snapshot pinned earlier may be subject to retention again."},
	{TypeRestoreRecommended, RestoreRecommended{}, "correlator", []string{"snapshotter"}, "A running version is vulnerable: restore this known-good snapshot, for these reasons."},
	{TypeIncidentOpened, IncidentOpened{}, "correlator", nil, "An application runs a vulnerable version."},
	{TypeIncidentClosed, IncidentClosed{}, "correlator", nil, "No vulnerable version runs and the data was restored from a clean snapshot, or an operator resolved the incident."},
	{TypeWorkloadObserved, WorkloadObserved{}, "snapshotter", []string{"correlator"}, "The set of pods mounting a protected PVC changed (or a resync repeats it): which versions write to the volume from when."},
	{TypeCertificateObserved, CertificateObserved{}, "certwatcher", []string{"correlator"}, "A certificate was first seen, or its users or serial changed: the inventory, whatever its expiry."},
	{TypeRestoreCompleted, RestoreCompleted{}, "snapshotter", []string{"correlator"}, "A PVC was restored from a snapshot (by a Restore, or by hand): its data now carries that snapshot's lineage."},
	{TypeIncidentResolved, IncidentResolved{}, "correlator", []string{"correlator"}, "An operator resolved (through the correlator's API) an incident without a restore, with a reason."},
	{TypeFindingDismissed, FindingDismissed{}, "correlator", []string{"correlator"}, "An operator dismissed (through the correlator's API) a finding as a false positive: it no longer makes a version vulnerable."},
	{TypeRestoreRequested, RestoreRequested{}, "correlator", []string{"snapshotter"}, "An operator asked (through the correlator's API) to restore a claim in place from a snapshot; the snapshotter creates the Restore."},
	{TypeRestoreStarted, RestoreStarted{}, "snapshotter", nil, "A Restore began: the claim, the snapshot and the workloads were checked; nothing has changed yet."},
	{TypeRestoreProgressed, RestoreProgressed{}, "snapshotter", nil, "A Restore entered a phase (safety snapshot, scaling down, restoring, scaling up, verifying, rolling back)."},
	{TypeRestoreFailed, RestoreFailed{}, "snapshotter", nil, "A Restore did not complete: the reason, and whether the claim was put back on its old volume."},
	{TypeReportGenerated, ReportGenerated{}, "correlator", nil, "A review-cycle report (Markdown and HTML) was generated and stored in the Object Store."},
}

// SubjectAttributes says, per event type, what the CloudEvents subject
// attribute (ce-subject) holds. NewEvent sets it from the payload
// (Subjecter); consumers may filter on it without decoding the data.
var SubjectAttributes = map[string]string{
	TypeSARIFUploaded:              "<namespace>/<app>",
	TypeCertificateExpiring:        "<namespace>/<secret> (the file path for certificates on disk)",
	TypeCertificateRotationRequest: "<namespace>/<secret>",
	TypeCertificateRotated:         "<namespace>/<secret>",
	TypeCertificateRotationFailed:  "<namespace>/<secret>",
	TypeSnapshotCompleted:          "<namespace>/<volume_snapshot>",
	TypeSnapshotFailed:             "<namespace>/<pvc>",
	TypeSnapshotMissed:             "<namespace>/<policy>",
	TypeSnapshotVerified:           "<namespace>/<volume_snapshot>",
	TypeSnapshotPinRequested:       "<namespace>/<volume_snapshot>",
	TypeSnapshotUnpinRequested:     "<namespace>/<volume_snapshot>",
	TypeRestoreRecommended:         "<namespace>/<pvc>",
	TypeIncidentOpened:             "<namespace>/<incident>",
	TypeIncidentClosed:             "<namespace>/<incident>",
	TypeWorkloadObserved:           "<namespace>/<pvc>",
	TypeCertificateObserved:        "<namespace>/<secret> (the file path for certificates on disk)",
	TypeRestoreCompleted:           "<namespace>/<pvc>",
	TypeIncidentResolved:           "<namespace>/<incident>",
	TypeFindingDismissed:           "<namespace>/<app>",
	TypeRestoreRequested:           "<namespace>/<pvc> (<namespace>/<snapshot> when the request names no claim)",
	TypeRestoreStarted:             "<namespace>/<pvc>",
	TypeRestoreProgressed:          "<namespace>/<pvc>",
	TypeRestoreFailed:              "<namespace>/<pvc>",
	TypeReportGenerated:            "<report id>",
}

// Subjecter is implemented by every catalogued payload: CESubject is the
// value of the event's subject attribute (SubjectAttributes).
type Subjecter interface {
	CESubject() string
}

// Lookup returns the Spec of an event type.
func Lookup(typ string) (Spec, bool) {
	for _, s := range Catalogue {
		if s.Type == typ {
			return s, true
		}
	}
	return Spec{}, false
}

// SubjectOf maps an event type to its subject:
// io.stateguard.snapshot.pin.requested.v1 → stateguard.snapshot.pin.requested.
func SubjectOf(typ string) string {
	t := strings.TrimPrefix(typ, "io.stateguard.")
	if i := strings.LastIndex(t, ".v"); i > 0 {
		t = t[:i]
	}
	return SubjectPrefix + t
}

// StreamOf maps an event type to the stream of its domain.
func StreamOf(typ string) string {
	domain, _, _ := strings.Cut(strings.TrimPrefix(SubjectOf(typ), SubjectPrefix), ".")
	switch domain {
	case "sarif":
		return StreamSARIF
	case "certificate":
		return StreamCertificate
	case "snapshot", "workload":
		return StreamSnapshot
	default:
		return StreamDecision
	}
}

// StreamSubjects are the subjects each stream captures.
var StreamSubjects = map[string][]string{
	StreamSARIF:       {SubjectPrefix + "sarif.>"},
	StreamCertificate: {SubjectPrefix + "certificate.>"},
	StreamSnapshot:    {SubjectPrefix + "snapshot.>", SubjectPrefix + "workload.>"},
	StreamDecision:    {SubjectPrefix + "restore.>", SubjectPrefix + "incident.>", SubjectPrefix + "finding.>", SubjectPrefix + "report.>"},
	StreamDeadLetter:  {DeadLetterPrefix + ">"},
}

func schemaName(typ string) string {
	return strings.TrimPrefix(typ, "io.stateguard.") + ".schema.json"
}

// SchemaURL is the dataschema attribute of events of this type.
func SchemaURL(typ string) string {
	return fmt.Sprintf("https://stateguard.io/schemas/%s", schemaName(typ))
}
