package events

import "strings"

// CESubject methods give the subject attribute of each payload's events
// (SubjectAttributes documents them; NewEvent sets them).

func join(parts ...string) string { return strings.Join(parts, "/") }

func certSubject(s CertificateSource) string {
	if s.Secret == "" {
		return s.Path
	}
	return join(s.Namespace, s.Secret)
}

// CESubject implements Subjecter.
func (p SARIFUploaded) CESubject() string { return join(p.Namespace, p.App) }

// CESubject implements Subjecter.
func (p CertificateExpiring) CESubject() string { return certSubject(p.Source) }

// CESubject implements Subjecter.
func (p CertificateObserved) CESubject() string { return certSubject(p.Source) }

// CESubject implements Subjecter.
func (p CertificateRotationRequested) CESubject() string { return join(p.Namespace, p.Secret) }

// CESubject implements Subjecter.
func (p CertificateRotated) CESubject() string { return join(p.Namespace, p.Secret) }

// CESubject implements Subjecter.
func (p CertificateRotationFailed) CESubject() string { return join(p.Namespace, p.Secret) }

// CESubject implements Subjecter.
func (p SnapshotCompleted) CESubject() string { return join(p.Namespace, p.VolumeSnapshot) }

// CESubject implements Subjecter.
func (p SnapshotFailed) CESubject() string { return join(p.Namespace, p.PVC) }

// CESubject implements Subjecter.
func (p SnapshotMissed) CESubject() string { return join(p.Namespace, p.Policy) }

// CESubject implements Subjecter.
func (p SnapshotVerified) CESubject() string { return join(p.Namespace, p.VolumeSnapshot) }

// CESubject implements Subjecter.
func (p SnapshotPinRequested) CESubject() string { return join(p.Namespace, p.VolumeSnapshot) }

// CESubject implements Subjecter.
func (p SnapshotUnpinRequested) CESubject() string { return join(p.Namespace, p.VolumeSnapshot) }

// CESubject implements Subjecter.
func (p RestoreRecommended) CESubject() string { return join(p.Namespace, p.PVC) }

// CESubject implements Subjecter.
func (p IncidentOpened) CESubject() string { return join(p.Namespace, p.Incident) }

// CESubject implements Subjecter.
func (p IncidentClosed) CESubject() string { return join(p.Namespace, p.Incident) }

// CESubject implements Subjecter.
func (p WorkloadObserved) CESubject() string { return join(p.Namespace, p.PVC) }

// CESubject implements Subjecter.
func (p RestoreCompleted) CESubject() string { return join(p.Namespace, p.PVC) }

// CESubject implements Subjecter.
func (p IncidentResolved) CESubject() string { return join(p.Namespace, p.Incident) }

// CESubject implements Subjecter.
func (p FindingDismissed) CESubject() string { return join(p.Namespace, p.App) }

// CESubject implements Subjecter.
func (p RestoreRequested) CESubject() string {
	if p.PVC == "" {
		return join(p.Namespace, p.Snapshot)
	}
	return join(p.Namespace, p.PVC)
}

// CESubject implements Subjecter.
func (p RestoreStarted) CESubject() string { return join(p.Namespace, p.PVC) }

// CESubject implements Subjecter.
func (p RestoreProgressed) CESubject() string { return join(p.Namespace, p.PVC) }

// CESubject implements Subjecter.
func (p RestoreFailed) CESubject() string { return join(p.Namespace, p.PVC) }

// CESubject implements Subjecter.
func (p ReportGenerated) CESubject() string { return p.ReportID }
