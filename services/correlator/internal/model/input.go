package model

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// Input is one fact taken from an event. Exactly one of the pointers is set.
type Input struct {
	EventID   string
	Namespace string

	Upload         *Upload
	Snapshot       *Snapshot // completed
	SnapshotFailed *SnapshotRef
	Verified       *Verification
	Expiring       *Expiring
	Rotated        *Rotation
	RotationFailed *Rotation
	Observation    *Observation
	Restore        *Restore
	Resolved       *Resolved
	Dismissal      *Dismissal

	// Join is set with Upload when the upload names no application: the
	// keys the engine joins it on (JoinUpload); Namespace is then empty.
	Join *JoinKeys
	// Targets are, with Observation, the applications the observed pods
	// name a repository for (ObservedTargets), by repository.
	Targets map[string][]RepoTarget
}

// Resolved is an incident.resolved fact.
type Resolved struct {
	Incident   string
	Resolution Resolution
}

// SnapshotRef names a snapshot in the input's namespace; with a failure,
// Time is when it failed: the policy's slot it was taken for, else the
// event's time.
type SnapshotRef struct {
	Name string
	PVC  string
	Time time.Time
}

// Verification is a restore test result.
type Verification struct {
	Name   string
	PVC    string
	Passed bool
	// Time is when the restore test was reported: the snapshot was taken
	// before it.
	Time time.Time
}

// Expiring is a certificate.expiring fact.
type Expiring struct {
	Secret      string
	Serial      string
	Observation CertObservation
	Users       Users
}

// Rotation is a certificate.rotated or rotation.failed fact.
type Rotation struct {
	Secret    string
	OldSerial string
	Reason    string
	// Done is what a certificate.rotated says of the rotation.
	Done RotationRecord
}

// ErrIgnored is returned by FromEvent for events the correlator does not
// use (its own decisions, path-only certificates, missed slots).
var ErrIgnored = errors.New("event not used by the correlator")

// FromEvent extracts the fact an event reports. Malformed payloads and
// events that cannot be joined yield permanent errors (dead-letter).
func FromEvent(ev events.Event) (Input, error) {
	in := Input{EventID: ev.ID()}
	switch ev.Type() {
	case events.TypeSARIFUploaded:
		p, err := events.Decode[events.SARIFUploaded](ev)
		if err != nil {
			return in, err
		}
		return in, fromUpload(&in, p)
	case events.TypeSnapshotCompleted:
		p, err := events.Decode[events.SnapshotCompleted](ev)
		if err != nil {
			return in, err
		}
		return in, fromSnapshot(&in, p)
	case events.TypeSnapshotFailed:
		p, err := events.Decode[events.SnapshotFailed](ev)
		if err != nil {
			return in, err
		}
		if p.Namespace == "" || p.VolumeSnapshot == "" {
			return in, ErrIgnored // nothing was created, nothing to correlate
		}
		at := ev.Time()
		if p.Slot != nil && !p.Slot.IsZero() {
			at = *p.Slot
		}
		in.Namespace, in.SnapshotFailed = p.Namespace, &SnapshotRef{Name: p.VolumeSnapshot, PVC: p.PVC, Time: at.UTC()}
		return in, nil
	case events.TypeSnapshotVerified:
		p, err := events.Decode[events.SnapshotVerified](ev)
		if err != nil {
			return in, err
		}
		if p.Namespace == "" || p.VolumeSnapshot == "" {
			return in, events.Permanent(fmt.Errorf("snapshot.verified %s: namespace and volume_snapshot are required", ev.ID()))
		}
		in.Namespace, in.Verified = p.Namespace, &Verification{Name: p.VolumeSnapshot, PVC: p.PVC, Passed: p.Passed, Time: ev.Time().UTC()}
		return in, nil
	case events.TypeCertificateExpiring:
		p, err := events.Decode[events.CertificateExpiring](ev)
		if err != nil {
			return in, err
		}
		return in, fromExpiring(&in, p, ev.Time())
	case events.TypeCertificateRotated:
		p, err := events.Decode[events.CertificateRotated](ev)
		if err != nil {
			return in, err
		}
		if p.Namespace == "" || p.Secret == "" {
			return in, events.Permanent(fmt.Errorf("certificate.rotated %s: namespace and secret are required", ev.ID()))
		}
		if p.DryRun {
			return in, ErrIgnored
		}
		in.Namespace, in.Rotated = p.Namespace, &Rotation{Secret: p.Secret, OldSerial: strings.ToLower(p.OldSerial),
			Done: RotationRecord{EventID: ev.ID(), At: ev.Time().UTC(), OldSerial: strings.ToLower(p.OldSerial),
				NewSerial: strings.ToLower(p.NewSerial), Method: p.Method, Checked: p.Verification.Checked,
				Verified: p.Verification.Checked && p.Verification.Match, VerifyError: p.Verification.Error}}
		return in, nil
	case events.TypeCertificateRotationFailed:
		p, err := events.Decode[events.CertificateRotationFailed](ev)
		if err != nil {
			return in, err
		}
		if p.Namespace == "" || p.Secret == "" {
			return in, events.Permanent(fmt.Errorf("certificate.rotation.failed %s: namespace and secret are required", ev.ID()))
		}
		in.Namespace, in.RotationFailed = p.Namespace, &Rotation{Secret: p.Secret, Reason: p.Reason}
		return in, nil
	case events.TypeCertificateObserved:
		p, err := events.Decode[events.CertificateObserved](ev)
		if err != nil {
			return in, err
		}
		// The inventory: the same facts as an expiry warning, without a
		// threshold, so key exposure never waits for one.
		return in, fromExpiring(&in, events.CertificateExpiring{Source: p.Source, DaysLeft: p.DaysLeft, Certificate: p.Certificate,
			Users: p.Users, CertManager: p.CertManager}, p.ObservedAt)
	case events.TypeWorkloadObserved:
		p, err := events.Decode[events.WorkloadObserved](ev)
		if err != nil {
			return in, err
		}
		return in, fromObservation(&in, p)
	case events.TypeRestoreCompleted:
		p, err := events.Decode[events.RestoreCompleted](ev)
		if err != nil {
			return in, err
		}
		if p.Namespace == "" || p.PVC == "" || p.VolumeSnapshot == "" || p.CompletedAt.IsZero() {
			return in, events.Permanent(fmt.Errorf("restore.completed %s: namespace, pvc, volume_snapshot and completed_at are required", ev.ID()))
		}
		id := p.RestoreID
		if id == "" {
			id = ev.ID()
		}
		in.Namespace, in.Restore = p.Namespace, &Restore{ID: id, EventID: ev.ID(), PVC: p.PVC, Snapshot: p.VolumeSnapshot,
			SnapshotPVC: p.SnapshotPVC, Time: p.CompletedAt.UTC(), Incident: p.Incident}
		if p.SnapshotTime != nil && !p.SnapshotTime.IsZero() {
			taken := p.SnapshotTime.UTC()
			in.Restore.SnapshotTime = &taken
		}
		return in, nil
	case events.TypeIncidentResolved:
		p, err := events.Decode[events.IncidentResolved](ev)
		if err != nil {
			return in, err
		}
		if p.Namespace == "" || p.Incident == "" || strings.TrimSpace(p.Reason) == "" || p.Actor == "" {
			return in, events.Permanent(fmt.Errorf("incident.resolved %s: namespace, incident, reason and actor are required", ev.ID()))
		}
		in.Namespace, in.Resolved = p.Namespace, &Resolved{Incident: p.Incident,
			Resolution: Resolution{EventID: ev.ID(), Reason: p.Reason, Actor: p.Actor, Time: p.ResolvedAt.UTC()}}
		return in, nil
	case events.TypeFindingDismissed:
		p, err := events.Decode[events.FindingDismissed](ev)
		if err != nil {
			return in, err
		}
		if p.Namespace == "" || p.App == "" || p.RuleID == "" || p.Actor == "" {
			return in, events.Permanent(fmt.Errorf("finding.dismissed %s: namespace, app, rule_id and actor are required", ev.ID()))
		}
		in.Namespace, in.Dismissal = p.Namespace, &Dismissal{EventID: ev.ID(), App: p.App, RuleID: p.RuleID, Fingerprint: p.Fingerprint,
			Reason: p.Reason, Actor: p.Actor, Time: p.DismissedAt.UTC()}
		return in, nil
	}
	return in, ErrIgnored
}

func fromObservation(in *Input, p events.WorkloadObserved) error {
	if p.Namespace == "" || p.PVC == "" || p.ObservedAt.IsZero() {
		return events.Permanent(fmt.Errorf("workload.observed %s: namespace, pvc and observed_at are required", in.EventID))
	}
	o := &Observation{EventID: in.EventID, PVC: p.PVC, Time: p.ObservedAt.UTC()}
	for _, pod := range p.Pods {
		w := workloadOf(p.Namespace, events.VolumeWorkload{Pod: pod.Pod, Owner: pod.Owner, App: pod.App, Version: pod.Version, Containers: pod.Containers,
			Annotations: pod.Annotations})
		if w.App == "" {
			continue
		}
		o.Workloads = append(o.Workloads, w)
		for _, sec := range pod.Secrets {
			if o.Secrets == nil {
				o.Secrets = map[string][]string{}
			}
			o.Secrets[w.App], _ = setAdd(o.Secrets[w.App], sec)
		}
	}
	slices.SortFunc(o.Workloads, func(a, b Workload) int {
		return strings.Compare(a.App+"\x00"+a.Pod, b.App+"\x00"+b.Pod)
	})
	in.Namespace, in.Observation = p.Namespace, o
	if t := ObservedTargets(p.Namespace, p.Pods); len(t) > 0 {
		in.Targets = t
	}
	return nil
}

func fromUpload(in *Input, p events.SARIFUploaded) error {
	if p.UploadID == "" {
		return events.Permanent(fmt.Errorf("sarif.uploaded %s: upload_id is required", in.EventID))
	}
	if p.App == "" {
		// GitHub's uploaders name a repository, not an application: the
		// engine joins the upload by repository (JoinUpload).
		if NormaliseRepository(p.Repository) == "" {
			return events.Permanent(fmt.Errorf("sarif.uploaded %s: no app, and repository %q is not owner/name to join on", in.EventID, p.Repository))
		}
		in.Join = &JoinKeys{Repository: NormaliseRepository(p.Repository), Category: p.Category, Namespace: p.Namespace}
	} else if p.Namespace == "" {
		return events.Permanent(fmt.Errorf("sarif.uploaded %s: app %q without a namespace", in.EventID, p.App))
	}
	u := &Upload{
		ID: p.UploadID, EventID: in.EventID, App: p.App, Category: p.Category,
		ReceivedAt: p.ReceivedAt.UTC(), Counts: p.BySeverity, Suppressed: p.Suppressed,
	}
	for _, img := range p.Images {
		if k := imageKey(img); k != "" {
			u.Keys = append(u.Keys, k)
		}
	}
	if p.CommitSHA != "" {
		u.Keys = append(u.Keys, "commit:"+strings.ToLower(p.CommitSHA))
	}
	if p.Version != "" {
		u.Keys = append(u.Keys, "version:"+p.Version)
	}
	if len(u.Keys) == 0 {
		return events.Permanent(fmt.Errorf("sarif.uploaded %s: no image digest, commit or version to join on", in.EventID))
	}
	slices.Sort(u.Keys)
	u.Keys = slices.Compact(u.Keys)
	seen := map[string]bool{}
	for _, f := range append(append([]events.Finding(nil), p.Findings...), p.NewFindings...) {
		k := f.RuleID + "\x00" + f.Fingerprint + "\x00" + f.Severity
		if seen[k] {
			continue
		}
		seen[k] = true
		cwes := append([]string(nil), f.CWEs...)
		tags := append([]string(nil), f.Tags...)
		slices.Sort(cwes)
		slices.Sort(tags)
		u.Findings = append(u.Findings, Finding{RuleID: f.RuleID, Severity: strings.ToLower(f.Severity), CWEs: cwes, Tags: tags,
			Fingerprint: f.Fingerprint, Suppressed: f.Suppressed})
	}
	slices.SortFunc(u.Findings, func(a, b Finding) int {
		return strings.Compare(a.RuleID+"\x00"+a.Severity+"\x00"+strings.Join(a.CWEs, ",")+"\x00"+a.Fingerprint, b.RuleID+"\x00"+b.Severity+"\x00"+strings.Join(b.CWEs, ",")+"\x00"+b.Fingerprint)
	})
	u.Findings = slices.CompactFunc(u.Findings, func(a, b Finding) bool {
		return a.RuleID == b.RuleID && a.Severity == b.Severity && slices.Equal(a.CWEs, b.CWEs) && slices.Equal(a.Tags, b.Tags) &&
			a.Fingerprint == b.Fingerprint && a.Suppressed == b.Suppressed
	})
	in.Upload = u
	if in.Join == nil {
		in.Namespace = p.Namespace
	}
	return nil
}

// imageKey is the version key of an image reference: its digest when it
// has one (repo@sha256:…), else "image:<ref>".
func imageKey(ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return ""
	}
	if _, d, ok := strings.Cut(ref, "@"); ok && d != "" {
		return strings.ToLower(d)
	}
	if strings.HasPrefix(ref, "sha256:") {
		return strings.ToLower(ref)
	}
	return "image:" + ref
}

func fromSnapshot(in *Input, p events.SnapshotCompleted) error {
	if p.Namespace == "" || p.VolumeSnapshot == "" {
		return events.Permanent(fmt.Errorf("snapshot.completed %s: namespace and volume_snapshot are required", in.EventID))
	}
	if p.CreationTime.IsZero() {
		return events.Permanent(fmt.Errorf("snapshot.completed %s: creation_time is required", in.EventID))
	}
	// A namespace's state keeps up to history snapshots per PVC, which
	// repeat the same PVC and size and the same workloads (one copy per
	// namespace: State.shareString, State.shareWorkloads). The two strings
	// only this snapshot has share one allocation.
	both := p.VolumeSnapshot + in.EventID
	in.EventID = both[len(p.VolumeSnapshot):]
	s := &Snapshot{
		Name: both[:len(p.VolumeSnapshot)], PVC: p.PVC, EventID: in.EventID, Time: p.CreationTime.UTC(),
		Completed: true, RestoreSize: p.RestoreSize, Encryption: p.Encryption, EncryptionEvidence: p.EncryptionEvidence,
	}
	for _, w := range p.Workloads {
		if wl := workloadOf(p.Namespace, w); wl.App != "" {
			s.Workloads = append(s.Workloads, wl)
		}
	}
	slices.SortFunc(s.Workloads, func(a, b Workload) int {
		return strings.Compare(a.App+"\x00"+a.Pod, b.App+"\x00"+b.Pod)
	})
	in.Namespace, in.Snapshot = p.Namespace, s
	return nil
}

// workloadOf is the workload a pod is, with its versions.
func workloadOf(ns string, w events.VolumeWorkload) Workload {
	wl := Workload{App: AppOf(w), Pod: w.Pod, Label: w.Version, Commit: CommitOf(w.Annotations)}
	if w.Owner != nil {
		o := *w.Owner
		if o.Namespace == "" {
			o.Namespace = ns
		}
		wl.Owner = &o
	}
	for _, c := range w.Containers {
		k := strings.ToLower(c.Digest)
		if k == "" && c.ImageID != "" {
			k = imageKey(c.ImageID)
		}
		if k == "" {
			k = imageKey(c.Image)
		}
		if k != "" {
			wl.Versions = append(wl.Versions, k)
		}
	}
	slices.Sort(wl.Versions)
	wl.Versions = slices.Compact(wl.Versions)
	return wl
}

// AppOf is the application a pod belongs to: its app.kubernetes.io/name,
// else the workload that owns it, else the pod itself.
func AppOf(w events.VolumeWorkload) string {
	switch {
	case w.App != "":
		return w.App
	case w.Owner != nil && w.Owner.Name != "":
		return w.Owner.Name
	}
	return w.Pod
}

func fromExpiring(in *Input, p events.CertificateExpiring, observed time.Time) error {
	if p.Source.Secret == "" {
		return ErrIgnored // a file on disk: no Secret to rotate
	}
	if p.Source.Namespace == "" || p.Certificate.Serial == "" {
		return events.Permanent(fmt.Errorf("certificate.expiring %s: source namespace and certificate serial are required", in.EventID))
	}
	e := &Expiring{
		Secret: p.Source.Secret,
		Serial: strings.ToLower(p.Certificate.Serial),
		Observation: CertObservation{
			NotAfter: p.Certificate.NotAfter.UTC(), DaysLeft: p.DaysLeft, Threshold: p.Threshold, ObservedAt: observed.UTC(),
		},
	}
	if cm := p.CertManager; cm != nil {
		e.Observation.CertManager = cm.Certificate
		if cm.RenewalTime != nil {
			t := cm.RenewalTime.UTC()
			e.Observation.RenewalTime = &t
		}
	}
	for _, w := range p.Users.Workloads {
		if w.Namespace == "" {
			w.Namespace = p.Source.Namespace
		}
		e.Users.Workloads = append(e.Users.Workloads, w)
	}
	for _, pod := range p.Users.Pods {
		e.Users.Pods = append(e.Users.Pods, pod.Name)
	}
	in.Namespace, in.Expiring = p.Source.Namespace, e
	return nil
}
