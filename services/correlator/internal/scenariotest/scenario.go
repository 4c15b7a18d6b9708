package scenariotest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// Source is the CloudEvents source of scenario events.
const Source = "/stateguard/scenario"

// T0 is the start of every scenario.
var T0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Digest returns a stable sha256 digest for a version name.
func Digest(version string) string {
	sum := sha256.Sum256([]byte(version))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Run is an app's workload on a snapshot: the app name, its owner kind and
// the versions (names, turned into digests) of its containers.
type Run struct {
	App      string
	Kind     string
	Versions []string
}

// Snapshot is a snapshot.completed event of namespace/pvc/name taken at at.
func Snapshot(ns, pvc, name string, at time.Time, runs ...Run) events.Event {
	p := events.SnapshotCompleted{
		Namespace: ns, PVC: pvc, VolumeSnapshot: name, CreationTime: at, RestoreSize: "10Gi",
		VolumeSnapshotClass: "csi-hostpath",
	}
	for _, r := range runs {
		kind := r.Kind
		if kind == "" {
			kind = "StatefulSet"
		}
		w := events.VolumeWorkload{
			Pod:   r.App + "-0",
			Owner: &events.ObjectRef{Kind: kind, Namespace: ns, Name: r.App},
			App:   r.App,
		}
		for i, v := range r.Versions {
			w.Containers = append(w.Containers, events.Container{
				Name: fmt.Sprintf("c%d", i), Image: "registry.example/" + r.App + ":" + v, Digest: Digest(v),
			})
		}
		p.Workloads = append(p.Workloads, w)
	}
	return events.MustNewEvent(events.TypeSnapshotCompleted, Source, "snapshot-"+ns+"-"+name, p)
}

// SnapshotFailed is a snapshot.failed event.
func SnapshotFailed(ns, pvc, name string) events.Event {
	return events.MustNewEvent(events.TypeSnapshotFailed, Source, "snapshot-failed-"+ns+"-"+name,
		events.SnapshotFailed{Namespace: ns, PVC: pvc, VolumeSnapshot: name, Error: "timed out"})
}

// SnapshotFailedAt is a snapshot.failed event of a policy's snapshot of
// slot, as the snapshotter reports one that never became ready.
func SnapshotFailedAt(ns, pvc, name string, slot time.Time) events.Event {
	return events.MustNewEvent(events.TypeSnapshotFailed, Source, "snapshot-failed-"+ns+"-"+name,
		events.SnapshotFailed{Namespace: ns, PVC: pvc, VolumeSnapshot: name, Policy: "hourly", Slot: &slot, Error: "timed out"})
}

// Verified is a snapshot.verified event.
func Verified(ns, pvc, name string, passed bool) events.Event {
	return events.MustNewEvent(events.TypeSnapshotVerified, Source, fmt.Sprintf("snapshot-verified-%s-%s-%t", ns, name, passed),
		events.SnapshotVerified{Namespace: ns, PVC: pvc, VolumeSnapshot: name, Passed: passed, Job: events.ObjectRef{Namespace: ns, Name: "verify-" + name}})
}

// VerifiedAt is a snapshot.verified event reported at at.
func VerifiedAt(ns, pvc, name string, passed bool, at time.Time) events.Event {
	ev := Verified(ns, pvc, name, passed)
	ev.SetTime(at)
	return ev
}

// Critical is a critical finding; Leak is a hard-coded credential finding.
var (
	Critical = events.Finding{Tool: "gosec", RuleID: "G402", Severity: "critical", CWEs: []string{"CWE-295"}, Fingerprint: "f-g402"}
	Leak     = events.Finding{Tool: "gosec", RuleID: "G101", Severity: "high", CWEs: []string{"CWE-798"}, Fingerprint: "f-g101"}
	Medium   = events.Finding{Tool: "gosec", RuleID: "G104", Severity: "medium", CWEs: []string{"CWE-703"}, Fingerprint: "f-g104"}
)

// SARIF is a sarif.uploaded event for app's version, received at at, with
// these open findings.
func SARIF(ns, app, uploadID, version string, at time.Time, findings ...events.Finding) events.Event {
	p := events.SARIFUploaded{
		UploadID: uploadID, Repository: "example/" + app, CommitSHA: fmt.Sprintf("%x", sha256.Sum256([]byte(version)))[:40],
		Ref: "refs/heads/main", Category: "gosec", App: app, Namespace: ns, Version: version,
		Images: []string{"registry.example/" + app + "@" + Digest(version)}, Tools: []events.Tool{{Name: "gosec"}},
		Findings: findings, ReceivedAt: at,
	}
	for _, f := range findings {
		p.ResultsTotal++
		switch f.Severity {
		case "critical":
			p.BySeverity.Critical++
		case "high":
			p.BySeverity.High++
		case "medium":
			p.BySeverity.Medium++
		case "low":
			p.BySeverity.Low++
		default:
			p.BySeverity.None++
		}
	}
	return events.MustNewEvent(events.TypeSARIFUploaded, Source, "sarif-"+uploadID, p)
}

// Cert is a certificate.expiring event for namespace/secret. cm, when not
// nil, says cert-manager owns it and renews at renewAt.
func Cert(ns, secret, serial string, notAfter time.Time, daysLeft float64, users []events.ObjectRef, renewAt *time.Time) events.Event {
	p := events.CertificateExpiring{
		Source:    events.CertificateSource{Namespace: ns, Secret: secret, Key: "tls.crt"},
		Threshold: "30d", DaysLeft: daysLeft,
		Certificate: events.Certificate{
			Subject: "CN=" + secret, Issuer: "CN=ca", Serial: serial, NotBefore: notAfter.Add(-90 * 24 * time.Hour),
			NotAfter: notAfter, KeyType: "ECDSA", KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256",
		},
		Users: events.CertificateUsers{Workloads: users},
	}
	if daysLeft <= 7 {
		p.Threshold = "7d"
	}
	if renewAt != nil {
		p.CertManager = &events.CertManagerInfo{Certificate: secret, NotAfter: &notAfter, RenewalTime: renewAt}
	}
	ev := events.MustNewEvent(events.TypeCertificateExpiring, Source, fmt.Sprintf("cert-%s-%s-%s-%s", ns, secret, serial, p.Threshold), p)
	// Observed when it had daysLeft left.
	ev.SetTime(notAfter.Add(-time.Duration(daysLeft * float64(24*time.Hour))))
	return ev
}

// Rotated is a certificate.rotated event.
func Rotated(ns, secret, oldSerial, newSerial string) events.Event {
	return events.MustNewEvent(events.TypeCertificateRotated, Source, "rotated-"+ns+"-"+secret+"-"+oldSerial,
		events.CertificateRotated{RequestID: "r", Namespace: ns, Secret: secret, Method: "in-cluster-ca", OldSerial: oldSerial, NewSerial: newSerial})
}

// Workload names a workload of ns.
func Workload(ns, kind, name string) events.ObjectRef {
	return events.ObjectRef{Kind: kind, Namespace: ns, Name: name}
}

// Case study names.
const (
	CaseNS  = "shop"
	CaseApp = "db"
	CasePVC = "data-db-0"
)

// CaseStudy returns the mission's case study in order, in four acts:
//  1. v1 runs, scanned clean; snapshots s1 and s2 of it (s2 is known-good).
//  2. v2 is deployed (snapshot s3), then its scan finds a critical flaw and
//     a hard-coded credential: incident, restore s2, rotate db-tls (the web
//     app's web-tls and the other app's other-tls stay).
//  3. the fix v3 is deployed (snapshot s4) and scanned clean: incident
//     closed, s4 known-good, s2 unpinned.
//
// Certificates of the namespace are reported up front.
func CaseStudy() []events.Event {
	ns := CaseNS
	h := func(n int) time.Time { return T0.Add(time.Duration(n) * time.Hour) }
	far := T0.Add(80 * 24 * time.Hour)
	return []events.Event{
		Cert(ns, "db-tls", "01", far, 80, []events.ObjectRef{Workload(ns, "StatefulSet", "db")}, nil),
		Cert(ns, "db-peer-tls", "02", far, 80, []events.ObjectRef{Workload(ns, "StatefulSet", "db")}, nil),
		Cert(ns, "web-tls", "03", far, 80, []events.ObjectRef{Workload(ns, "Deployment", "web")}, nil),
		SARIF(ns, CaseApp, "u1", "v1", h(0)),
		Snapshot(ns, CasePVC, "s1", h(1), Run{App: CaseApp, Versions: []string{"v1"}}),
		Snapshot(ns, CasePVC, "s2", h(2), Run{App: CaseApp, Versions: []string{"v1"}}),
		Snapshot(ns, "web-cache", "w1", h(2), Run{App: "web", Kind: "Deployment", Versions: []string{"w1"}}),
		Snapshot(ns, CasePVC, "s3", h(3), Run{App: CaseApp, Versions: []string{"v2"}}),
		SARIF(ns, CaseApp, "u2", "v2", h(3).Add(30*time.Minute), Critical, Leak),
		Snapshot(ns, CasePVC, "s4", h(5), Run{App: CaseApp, Versions: []string{"v3"}}),
		SARIF(ns, CaseApp, "u3", "v3", h(5).Add(10*time.Minute), Medium),
	}
}

// Observed is a workload.observed event: from at on, these runs mount
// pvc (none: idle). secrets are the TLS Secrets their pods mount.
func Observed(ns, pvc string, at time.Time, secrets []string, runs ...Run) events.Event {
	p := events.WorkloadObserved{Namespace: ns, PVC: pvc, ObservedAt: at, Pods: []events.ObservedPod{}}
	for _, r := range runs {
		kind := r.Kind
		if kind == "" {
			kind = "StatefulSet"
		}
		pod := events.ObservedPod{Pod: r.App + "-0", Owner: &events.ObjectRef{Kind: kind, Namespace: ns, Name: r.App}, App: r.App, Secrets: secrets}
		for _, v := range r.Versions {
			pod.Containers = append(pod.Containers, events.Container{Name: r.App, Image: "registry.example/" + r.App + ":" + v, Digest: Digest(v)})
		}
		p.Pods = append(p.Pods, pod)
	}
	return events.MustNewEvent(events.TypeWorkloadObserved, Source, events.ObservationID(p), p)
}

// Restored is a restore.completed event: pvc holds snapshot's data from at.
func Restored(ns, pvc, snapshot string, at time.Time) events.Event {
	return events.MustNewEvent(events.TypeRestoreCompleted, Source, "restored-"+ns+"-"+pvc+"-"+snapshot,
		events.RestoreCompleted{RestoreID: "restore-" + pvc + "-" + snapshot, Namespace: ns, PVC: pvc, VolumeSnapshot: snapshot, CompletedAt: at})
}

// RestoredTaken is Restored as the snapshotter's Restore executor
// publishes it: with the restored snapshot's time (taken, its
// snapshot.completed's creation_time) and, when it is a snapshot of
// another claim, that claim (snapshotPVC; "" for pvc's own).
func RestoredTaken(ns, pvc, snapshot, snapshotPVC string, taken, at time.Time) events.Event {
	return events.MustNewEvent(events.TypeRestoreCompleted, Source, "restored-"+ns+"-"+pvc+"-"+snapshot,
		events.RestoreCompleted{RestoreID: "restore-" + pvc + "-" + snapshot, Namespace: ns, PVC: pvc, VolumeSnapshot: snapshot,
			SnapshotPVC: snapshotPVC, SnapshotTime: &taken, CompletedAt: at})
}

// Resolved is an incident.resolved event.
func Resolved(ns, incident string, at time.Time) events.Event {
	return events.MustNewEvent(events.TypeIncidentResolved, Source, "resolved-"+ns+"-"+incident,
		events.IncidentResolved{Incident: incident, Namespace: ns, Reason: "not exploited: the endpoint was never exposed", Actor: "alice", ResolvedAt: at})
}

// Dismissed is a finding.dismissed event for app's finding f.
func Dismissed(ns, app string, f events.Finding, at time.Time) events.Event {
	return events.MustNewEvent(events.TypeFindingDismissed, Source, "dismissed-"+ns+"-"+app+"-"+f.RuleID+"-"+f.Fingerprint,
		events.FindingDismissed{Namespace: ns, App: app, RuleID: f.RuleID, Fingerprint: f.Fingerprint, Reason: "false positive", Actor: "alice", DismissedAt: at})
}

// Encrypted is the snapshot.completed event ev with the encryption at rest
// the snapshotter reported and its evidence.
func Encrypted(ev events.Event, encryption string, evidence ...string) events.Event {
	p, err := events.Decode[events.SnapshotCompleted](ev)
	if err != nil {
		panic(err)
	}
	p.Encryption, p.EncryptionEvidence = encryption, evidence
	out := events.MustNewEvent(ev.Type(), ev.Source(), ev.ID(), p)
	out.SetTime(ev.Time())
	return out
}
