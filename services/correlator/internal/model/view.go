package model

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// Verdicts and classes.
const (
	Vulnerable = "vulnerable"
	Clean      = "clean"
	Unknown    = "unknown"
	Tainted    = "tainted"
)

// View is derived from a State: a pure function of its facts.
type View struct {
	Namespace string    `json:"namespace"`
	Apps      []AppView `json:"apps"`
	// Pins are the snapshots that must be pinned, and why.
	Pins map[string]Pin `json:"pins,omitempty"`
	// Certificates are the namespace's TLS Secrets.
	Certificates []CertView `json:"certificates,omitempty"`
}

// AppView is an application's posture.
type AppView struct {
	Namespace string `json:"namespace"`
	App       string `json:"app"`
	// Running are the versions on the app's newest snapshot.
	Running   []string            `json:"running"`
	Versions  []VersionView       `json:"versions"`
	Snapshots []SnapshotView      `json:"snapshots"`
	KnownGood map[string][]string `json:"known_good,omitempty"`
	Incidents []IncidentView      `json:"incidents,omitempty"`
	// Secrets are the TLS Secrets the app's workloads mount.
	Secrets []string `json:"secrets,omitempty"`
	// UnencryptedKnownGood are the known-good snapshots the snapshotter
	// reported unencrypted at rest (unencryptedKnownGood): a restore point
	// that does not meet the practice of encrypted backups.
	UnencryptedKnownGood []string `json:"unencrypted_known_good,omitempty"`
}

// VersionView is a version and its verdict.
type VersionView struct {
	Version string      `json:"version"`
	Verdict string      `json:"verdict"`
	Uploads []UploadRef `json:"uploads,omitempty"`
}

// UploadRef is the latest upload of one category for a version.
type UploadRef struct {
	UploadID   string                `json:"upload_id"`
	EventID    string                `json:"event_id"`
	Category   string                `json:"category,omitempty"`
	ReceivedAt time.Time             `json:"received_at"`
	Vulnerable bool                  `json:"vulnerable"`
	RuleIDs    []string              `json:"rule_ids,omitempty"`
	Severities []string              `json:"severities,omitempty"`
	Secret     bool                  `json:"secret_exposure,omitempty"`
	Counts     events.SeverityCounts `json:"counts"`
	// Open counts the findings at or above the threshold that are neither
	// suppressed in the SARIF log nor dismissed by an operator.
	Open int `json:"open"`
}

// SnapshotView is a snapshot's class for one application.
type SnapshotView struct {
	Name        string           `json:"name"`
	PVC         string           `json:"pvc"`
	Time        time.Time        `json:"time"`
	Ready       bool             `json:"ready"`
	Class       string           `json:"class"`
	Versions    []VersionVerdict `json:"versions"`
	EventID     string           `json:"event_id"`
	RestoreSize string           `json:"restore_size,omitempty"`
	Workloads   []WorkloadRef    `json:"workloads,omitempty"`
	// Encryption at rest as the snapshotter reported it (encrypted,
	// unencrypted, unknown; absent: not reported), with its evidence.
	Encryption         string   `json:"encryption,omitempty"`
	EncryptionEvidence []string `json:"encryption_evidence,omitempty"`
}

// VersionVerdict is a version seen on a snapshot and its verdict.
type VersionVerdict struct {
	Version string `json:"version"`
	Verdict string `json:"verdict"`
}

// IncidentView is a run of snapshots on which a vulnerable version ran,
// ended by the first clean snapshot after it.
type IncidentView struct {
	ID        string          `json:"id"`
	App       string          `json:"app"`
	Open      bool            `json:"open"`
	Versions  []string        `json:"versions"`
	Start     string          `json:"start_snapshot"`
	StartTime time.Time       `json:"start_time"`
	End       string          `json:"end_snapshot,omitempty"`
	Reasons   []events.Reason `json:"reasons"`
	Causes    []string        `json:"causes"`
	// RestorePoints are, per PVC, the newest clean, ready snapshot taken
	// before the incident started.
	RestorePoints []SnapshotView `json:"restore_points,omitempty"`
	// SecretExposure: a finding points at exposed keys or credentials.
	SecretExposure bool     `json:"secret_exposure,omitempty"`
	Secrets        []string `json:"secrets,omitempty"`
	CloseCauses    []string `json:"close_causes,omitempty"`
	CloseReason    string   `json:"close_reason,omitempty"`
	// Lineage is, per PVC the incident touches, every version that wrote
	// to its data since its lineage began, with its interval and verdict.
	Lineage []events.LineageSpan `json:"lineage,omitempty"`
	// ClosedAt is when a closed incident ended: the time of the fact that
	// closed it (a restore, a resolution, a clean snapshot), so that
	// replays agree on it.
	ClosedAt time.Time `json:"closed_at,omitzero"`
}

// CertView is a TLS Secret's certificate posture.
type CertView struct {
	Secret        string     `json:"secret"`
	Serial        string     `json:"serial"`
	NotAfter      time.Time  `json:"not_after"`
	DaysLeft      float64    `json:"days_left"`
	ObservedAt    time.Time  `json:"observed_at"`
	CertManager   string     `json:"cert_manager,omitempty"`
	RenewalTime   *time.Time `json:"renewal_time,omitempty"`
	RenewsInTime  bool       `json:"renews_in_time,omitempty"`
	Rotated       bool       `json:"rotated,omitempty"`
	NeedsRotation bool       `json:"needs_rotation,omitempty"`
	Reason        string     `json:"reason,omitempty"`
	Causes        []string   `json:"causes,omitempty"`
	Users         Users      `json:"users"`
	// LastRotation is the Secret's newest rotation, with its verification.
	LastRotation *RotationRecord `json:"last_rotation,omitempty"`
}

// Derive computes the view of st under r, every application afresh, from
// the facts alone: not from the cache or the fact index that Apply keeps
// (the model's tests compare the two).
func Derive(r Rules, st *State) View {
	plain := *st
	plain.cache = nil
	st = &plain
	apps := appNames(st)
	views := make([]*AppView, len(apps))
	pins := make([]*appPins, len(apps))
	for i, app := range apps {
		av := deriveApp(r, st, app, nil, reuse{pods: true})
		views[i], pins[i] = &av, pinsOf(&av)
	}
	return assemble(st.Namespace, views, pins, certViews(r, st))
}

// appNames lists, sorted, the applications st knows of: those that ran on
// a snapshot and those named by an upload.
func appNames(st *State) []string {
	apps := map[string]bool{}
	for _, s := range st.Snapshots {
		for _, w := range s.Workloads {
			apps[w.App] = true
		}
	}
	for _, u := range st.Uploads {
		apps[u.App] = true
	}
	return ordered.Keys(apps)
}

// assemble builds the namespace's view from its applications' views (in
// the order of their names) and pins, and its certificates.
func assemble(ns string, apps []*AppView, pins []*appPins, certs []CertView) View {
	v := View{Namespace: ns, Pins: map[string]Pin{}, Certificates: certs, Apps: make([]AppView, 0, len(apps))}
	for i, av := range apps {
		for _, kp := range pins[i].known {
			if _, ok := v.Pins[kp.name]; !ok {
				v.Pins[kp.name] = kp.pin
			}
		}
		for _, rp := range pins[i].restore {
			if p := v.Pins[rp.name]; p.Incident == "" || rp.pin.Incident < p.Incident {
				v.Pins[rp.name] = rp.pin
			}
		}
		v.Apps = append(v.Apps, *av)
	}
	return v
}

// appPins are the pins an application's view calls for: its known-good
// snapshots, and the restore points of its open incidents (which win over
// a known-good pin, the smallest incident id first).
type appPins struct {
	known, restore []namedPin
}

type namedPin struct {
	name string
	pin  Pin
}

func pinsOf(av *AppView) *appPins {
	ps := &appPins{}
	for _, pvc := range ordered.Keys(av.KnownGood) {
		for _, n := range av.KnownGood[pvc] {
			ps.known = append(ps.known, namedPin{n, Pin{PVC: pvc, Reason: "known-good: newest clean, ready snapshot of the PVC", Causes: av.snapshotCauses(n)}})
		}
	}
	for _, inc := range av.Incidents {
		if !inc.Open {
			continue
		}
		for _, rp := range inc.RestorePoints {
			causes, _ := setAdd(slices.Clone(inc.Causes), rp.EventID)
			ps.restore = append(ps.restore, namedPin{rp.Name, Pin{PVC: rp.PVC, Reason: "restore point of incident " + inc.ID, Incident: inc.ID, Causes: causes}})
		}
	}
	return ps
}

// App returns the view of one application.
func (v View) App(app string) (AppView, bool) {
	i := slices.IndexFunc(v.Apps, func(a AppView) bool { return a.App == app })
	if i < 0 {
		return AppView{}, false
	}
	return v.Apps[i], true
}

// Snapshot finds a snapshot's view.
func (av AppView) Snapshot(name string) (SnapshotView, bool) {
	i := slices.IndexFunc(av.Snapshots, func(s SnapshotView) bool { return s.Name == name })
	if i < 0 {
		return SnapshotView{}, false
	}
	return av.Snapshots[i], true
}

// snapshotCauses are the snapshot's event and the uploads behind the
// verdicts of its versions.
func (av AppView) snapshotCauses(name string) []string {
	sv, ok := av.Snapshot(name)
	if !ok {
		return nil
	}
	causes := []string{sv.EventID}
	for _, vv := range sv.Versions {
		i := slices.IndexFunc(av.Versions, func(v VersionView) bool { return v.Version == vv.Version })
		if i < 0 {
			continue
		}
		for _, u := range av.Versions[i].Uploads {
			causes, _ = setAdd(causes, u.EventID)
		}
	}
	slices.Sort(causes)
	return slices.Compact(causes)
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

func compareRef(a, b WorkloadRef) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Kind, b.Kind), strings.Compare(a.Name, b.Name))
}
