package report

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/audit"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// ExpiryHorizon is how far ahead the report looks for expiring certificates.
const ExpiryHorizon = 30 * 24 * time.Hour

// Report is the review-cycle report of a period.
type Report struct {
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	Namespace string    `json:"namespace,omitempty"`
	Apps      []App     `json:"apps"`
	// Attention lists, first, what the review should look at.
	Attention []string `json:"attention"`
}

// App is one application's part of the report.
type App struct {
	Namespace        string      `json:"namespace"`
	App              string      `json:"app"`
	SnapshotsTaken   int         `json:"snapshots_taken"`
	SnapshotsFailed  int         `json:"snapshots_failed"`
	SnapshotsMissed  int         `json:"snapshots_missed"`
	RestoreTestsPass int         `json:"restore_tests_passed"`
	RestoreTestsFail int         `json:"restore_tests_failed"`
	KnownGood        []KnownGood `json:"known_good"`
	Expiring         []Expiring  `json:"certificates_expiring"`
	Rotations        []Rotation  `json:"rotations"`
	Incidents        []Incident  `json:"incidents"`
	Uploads          []Upload    `json:"uploads"`
	Dismissed        []Dismissal `json:"dismissed"`
}

// KnownGood is a PVC's newest known-good snapshot at the end of the period.
type KnownGood struct {
	PVC        string        `json:"pvc"`
	Snapshot   string        `json:"snapshot,omitempty"`
	Age        time.Duration `json:"age_seconds"`
	Encryption string        `json:"encryption,omitempty"`
	Evidence   []string      `json:"encryption_evidence,omitempty"`
}

// Expiring is a certificate that expires within ExpiryHorizon of Until.
type Expiring struct {
	Secret   string    `json:"secret"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft float64   `json:"days_left"`
}

// Rotation is a certificate rotated during the period.
type Rotation struct {
	Secret   string    `json:"secret"`
	At       time.Time `json:"at"`
	Verified bool      `json:"verified" jsonschema_description:"the served certificate was checked and is the new one"`
	Detail   string    `json:"detail,omitempty"`
}

// Incident is an incident opened or closed during the period.
type Incident struct {
	ID       string        `json:"id"`
	Opened   time.Time     `json:"opened"`
	Closed   *time.Time    `json:"closed,omitempty"`
	ToClose  time.Duration `json:"time_to_close_seconds,omitempty"`
	Reason   string        `json:"close_reason,omitempty"`
	Versions []string      `json:"versions,omitempty"`
}

// Upload is one SARIF upload's open findings by severity.
type Upload struct {
	At       time.Time             `json:"at"`
	Version  string                `json:"version"`
	UploadID string                `json:"upload_id"`
	Open     events.SeverityCounts `json:"open"`
}

// Dismissal is a finding an operator dismissed.
type Dismissal struct {
	At          time.Time `json:"at"`
	RuleID      string    `json:"rule_id"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Actor       string    `json:"actor"`
	Reason      string    `json:"reason"`
}

// Build makes the report of [since, until] from the streams' records and
// the correlator's views (its posture now), for one namespace or all ("").
func Build(views []model.View, recs []audit.Record, since, until time.Time, namespace string) Report {
	rep := Report{Since: since, Until: until, Namespace: namespace, Attention: []string{}}
	idx := index(recs)
	for _, v := range views {
		if namespace != "" && v.Namespace != namespace {
			continue
		}
		for _, av := range v.Apps {
			a := buildApp(v, av, idx, since, until)
			rep.Apps = append(rep.Apps, a)
			rep.Attention = append(rep.Attention, attention(a)...)
		}
	}
	slices.SortFunc(rep.Apps, func(a, b App) int { return strings.Compare(a.Namespace+"/"+a.App, b.Namespace+"/"+b.App) })
	return rep
}

// records holds the records by kind, decoded once.
type records struct {
	completed map[string]events.SnapshotCompleted // by namespace/volume snapshot, the latest
	all       []audit.Record
}

func index(recs []audit.Record) records {
	r := records{completed: map[string]events.SnapshotCompleted{}, all: recs}
	for _, rec := range recs {
		if rec.Event.Type() == events.TypeSnapshotCompleted {
			if p, err := events.Decode[events.SnapshotCompleted](rec.Event); err == nil {
				r.completed[p.Namespace+"/"+p.VolumeSnapshot] = p
			}
		}
	}
	return r
}

func decode[T any](rec audit.Record) (T, bool) {
	var v T
	return v, json.Unmarshal(rec.Event.Data(), &v) == nil
}

func within(t, since, until time.Time) bool { return !t.Before(since) && !t.After(until) }

// buildApp counts one application's period.
func buildApp(v model.View, av model.AppView, idx records, since, until time.Time) App {
	a := App{Namespace: av.Namespace, App: av.App, KnownGood: []KnownGood{}, Expiring: []Expiring{}, Rotations: []Rotation{},
		Incidents: []Incident{}, Uploads: []Upload{}, Dismissed: []Dismissal{}}
	pvcs, policies := pvcsOf(av, idx)
	opened := map[string]Incident{}
	for _, rec := range idx.all {
		if within(rec.Stored, since, until) {
			countBackups(&a, rec, pvcs, policies)
			countSecurity(&a, rec, av)
		}
		trackIncident(opened, rec, av)
	}
	a.Incidents = incidentsIn(opened, since, until)
	a.KnownGood = knownGood(av, idx, until)
	a.Expiring = expiring(v, av, until)
	return a
}

// countBackups counts a record of the period about the app's snapshots
// and restore tests.
func countBackups(a *App, rec audit.Record, pvcs, policies map[string]bool) {
	switch rec.Event.Type() {
	case events.TypeSnapshotCompleted:
		p, _ := decode[events.SnapshotCompleted](rec)
		a.SnapshotsTaken += count(p.Namespace == a.Namespace && pvcs[p.PVC])
	case events.TypeSnapshotFailed:
		p, _ := decode[events.SnapshotFailed](rec)
		a.SnapshotsFailed += count(p.Namespace == a.Namespace && pvcs[p.PVC])
	case events.TypeSnapshotMissed:
		if p, _ := decode[events.SnapshotMissed](rec); p.Namespace == a.Namespace && policies[p.Policy] {
			a.SnapshotsMissed += len(p.Slots)
		}
	case events.TypeSnapshotVerified:
		if p, _ := decode[events.SnapshotVerified](rec); p.Namespace == a.Namespace && pvcs[p.PVC] {
			a.RestoreTestsPass += count(p.Passed)
			a.RestoreTestsFail += count(!p.Passed)
		}
	}
}

// countSecurity records a record of the period about the app's
// certificates rotated, uploads and dismissed findings.
func countSecurity(a *App, rec audit.Record, av model.AppView) {
	switch rec.Event.Type() {
	case events.TypeCertificateRotated:
		if p, _ := decode[events.CertificateRotated](rec); p.Namespace == av.Namespace && slices.Contains(av.Secrets, p.Secret) {
			a.Rotations = append(a.Rotations, rotationOf(p, rec.Stored))
		}
	case events.TypeSARIFUploaded:
		if p, _ := decode[events.SARIFUploaded](rec); p.Namespace == av.Namespace && p.App == av.App {
			a.Uploads = append(a.Uploads, Upload{At: rec.Stored, Version: p.Version, UploadID: p.UploadID, Open: openCounts(p)})
		}
	case events.TypeFindingDismissed:
		if p, _ := decode[events.FindingDismissed](rec); p.Namespace == av.Namespace && p.App == av.App {
			a.Dismissed = append(a.Dismissed, Dismissal{At: rec.Stored, RuleID: p.RuleID, Fingerprint: p.Fingerprint, Actor: p.Actor, Reason: p.Reason})
		}
	}
}

// trackIncident follows the app's incidents over every record (an
// incident closed in the period may have opened before it).
func trackIncident(opened map[string]Incident, rec audit.Record, av model.AppView) {
	switch rec.Event.Type() {
	case events.TypeIncidentOpened:
		if p, _ := decode[events.IncidentOpened](rec); p.Namespace == av.Namespace && p.App == av.App {
			opened[p.Incident] = Incident{ID: p.Incident, Opened: rec.Stored, Versions: p.Versions}
		}
	case events.TypeIncidentClosed:
		if p, _ := decode[events.IncidentClosed](rec); p.Namespace == av.Namespace && p.App == av.App {
			i := opened[p.Incident]
			at := rec.Stored
			i.ID, i.Closed, i.Reason = p.Incident, &at, p.Reason
			if !i.Opened.IsZero() {
				i.ToClose = at.Sub(i.Opened)
			}
			opened[p.Incident] = i
		}
	}
}

func count(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pvcsOf are the app's PVCs (from its snapshots) and the policies that
// snapshot them.
func pvcsOf(av model.AppView, idx records) (map[string]bool, map[string]bool) {
	pvcs, policies := map[string]bool{}, map[string]bool{}
	for _, s := range av.Snapshots {
		pvcs[s.PVC] = true
	}
	for pvc := range av.KnownGood {
		pvcs[pvc] = true
	}
	for _, p := range idx.completed {
		if p.Namespace == av.Namespace && pvcs[p.PVC] && p.Policy != "" {
			policies[p.Policy] = true
		}
	}
	return pvcs, policies
}

func rotationOf(p events.CertificateRotated, at time.Time) Rotation {
	r := Rotation{Secret: p.Secret, At: at, Verified: p.Verification.Checked && p.Verification.Match}
	switch {
	case r.Verified:
		r.Detail = fmt.Sprintf("served serial %s checked on %s:%d", p.Verification.ServedSerial, p.Verification.Service, p.Verification.Port)
	case p.Verification.Error != "":
		r.Detail = p.Verification.Error
	default:
		r.Detail = "the served certificate was not checked"
	}
	return r
}

// openCounts are an upload's open findings: by severity minus suppressed.
func openCounts(p events.SARIFUploaded) events.SeverityCounts {
	c := p.BySeverity
	if s := p.Suppressed; s != nil {
		c.Critical, c.High, c.Medium, c.Low, c.None = c.Critical-s.Critical, c.High-s.High, c.Medium-s.Medium, c.Low-s.Low, c.None-s.None
	}
	return c
}

// incidentsIn keeps the incidents opened or closed in the period.
func incidentsIn(all map[string]Incident, since, until time.Time) []Incident {
	out := []Incident{}
	for _, i := range all {
		if within(i.Opened, since, until) || (i.Closed != nil && within(*i.Closed, since, until)) {
			out = append(out, i)
		}
	}
	slices.SortFunc(out, func(a, b Incident) int { return a.Opened.Compare(b.Opened) })
	return out
}

// knownGood is, per PVC, the newest known-good snapshot, its age at until
// and its encryption at rest as the snapshotter reported it (kept in the
// correlator's state; the streams' snapshot.completed for a state from
// before it kept it).
func knownGood(av model.AppView, idx records, until time.Time) []KnownGood {
	var out []KnownGood
	views := map[string]model.SnapshotView{}
	pvcs := map[string]bool{}
	for _, s := range av.Snapshots {
		views[s.Name] = s
		pvcs[s.PVC] = true
	}
	for _, pvc := range ordered.Keys(pvcs) {
		k := KnownGood{PVC: pvc, Encryption: events.EncryptionUnknown}
		var newest model.SnapshotView
		for _, n := range av.KnownGood[pvc] {
			if sv := views[n]; k.Snapshot == "" || sv.Time.After(newest.Time) {
				k.Snapshot, newest = n, sv
			}
		}
		if k.Snapshot != "" {
			k.Age = until.Sub(newest.Time).Round(time.Minute)
			switch p, ok := idx.completed[av.Namespace+"/"+k.Snapshot]; {
			case newest.Encryption != "":
				k.Encryption, k.Evidence = newest.Encryption, newest.EncryptionEvidence
			case ok && p.Encryption != "":
				k.Encryption, k.Evidence = p.Encryption, p.EncryptionEvidence
			}
		}
		out = append(out, k)
	}
	return out
}

// expiring are the app's certificates that expire within ExpiryHorizon
// (or have expired), but for those already reported rotated.
func expiring(v model.View, av model.AppView, until time.Time) []Expiring {
	out := []Expiring{}
	for _, c := range v.Certificates {
		if !slices.Contains(av.Secrets, c.Secret) || c.Rotated || c.NotAfter.Sub(until) > ExpiryHorizon {
			continue
		}
		out = append(out, Expiring{Secret: c.Secret, NotAfter: c.NotAfter, DaysLeft: float64(c.NotAfter.Sub(until).Round(time.Hour).Hours()) / 24})
	}
	return out
}

// attention are the points of an app the review should look at first.
func attention(a App) []string {
	var out []string
	ref := a.Namespace + "/" + a.App
	for _, k := range a.KnownGood {
		switch {
		case k.Snapshot == "":
			out = append(out, fmt.Sprintf("%s: PVC %s has no known-good snapshot", ref, k.PVC))
		case k.Encryption == events.EncryptionUnencrypted:
			out = append(out, fmt.Sprintf("%s: the known-good snapshot %s of PVC %s is not encrypted at rest", ref, k.Snapshot, k.PVC))
		}
	}
	if a.RestoreTestsFail > 0 {
		out = append(out, fmt.Sprintf("%s: %d restore test(s) failed", ref, a.RestoreTestsFail))
	}
	if a.SnapshotsFailed+a.SnapshotsMissed > 0 {
		out = append(out, fmt.Sprintf("%s: %d snapshot(s) failed, %d slot(s) missed", ref, a.SnapshotsFailed, a.SnapshotsMissed))
	}
	for _, i := range a.Incidents {
		if i.Closed == nil {
			out = append(out, fmt.Sprintf("%s: incident %s is still open", ref, i.ID))
		}
	}
	for _, e := range a.Expiring {
		if e.DaysLeft < 0 {
			out = append(out, fmt.Sprintf("%s: certificate %s expired %.0f days ago", ref, e.Secret, -e.DaysLeft))
			continue
		}
		out = append(out, fmt.Sprintf("%s: certificate %s expires in %.0f days", ref, e.Secret, e.DaysLeft))
	}
	for _, r := range a.Rotations {
		if !r.Verified {
			out = append(out, fmt.Sprintf("%s: the rotation of %s was not verified (%s)", ref, r.Secret, r.Detail))
		}
	}
	return out
}

func writeJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
