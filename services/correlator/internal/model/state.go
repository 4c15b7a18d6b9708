package model

import (
	"slices"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// State is everything the correlator knows about one namespace. The
// namespace is the unit of serialisation: a TLS Secret can only be mounted
// by workloads of its own namespace, so joining certificates with
// applications never crosses it.
type State struct {
	Namespace string `json:"namespace"`
	// Facts, keyed by identity.
	Uploads   map[string]*Upload   `json:"uploads,omitempty"`
	Snapshots map[string]*Snapshot `json:"snapshots,omitempty"`
	Certs     map[string]*Cert     `json:"certs,omitempty"`
	// Observations are workload.observed facts keyed by event id: which
	// pods (and versions) mounted a PVC from when.
	Observations map[string]*Observation `json:"observations,omitempty"`
	// Restores are restore.completed facts keyed by restore id.
	Restores map[string]*Restore `json:"restores,omitempty"`
	// Resolutions are operators' incident.resolved facts keyed by incident.
	Resolutions map[string]*Resolution `json:"resolutions,omitempty"`
	// Dismissals are operators' finding.dismissed facts keyed by
	// dismissalKey(app, rule id, fingerprint).
	Dismissals map[string]*Dismissal `json:"dismissals,omitempty"`
	// Ledger holds the decisions in force; after every Apply it equals what
	// the facts call for.
	Ledger Ledger `json:"ledger"`
	// Journal is bookkeeping that depends on the path taken (how often a
	// snapshot was pinned, which one-off decisions were published). It is
	// what keeps a restarted correlator from publishing a decision again.
	Journal Journal `json:"journal"`

	// cache holds derived views between events (in memory only).
	cache *viewCache
	// workloads holds one copy of each list of workloads the namespace's
	// snapshots carry (in memory only): an app's snapshots repeat the same
	// pods, owners and versions, and sharing them keeps the state small
	// and its walks in few cache lines.
	workloads map[string][]Workload
	// strs holds one copy of each PVC name, restore size and encryption
	// string the namespace's snapshots carry (in memory only; shareString).
	strs map[string]string
	// certsVersion counts the changes of Certs in memory.
	certsVersion uint64
	// names are the keys of Snapshots, sorted, kept as snapshots come and
	// go (in memory only; namesOK is false until first asked for).
	names   []string
	namesOK bool
	// changedParts are the PVCs whose facts changed since the store took
	// them (in memory only; parts.go).
	changedParts map[string]struct{}
	// changedUploads are the uploads added or dropped since the store
	// took them (in memory only; parts.go).
	changedUploads map[string]struct{}
	// pinsApart are the snapshots whose pin generation may belong to no
	// part — the snapshot unknown or without a PVC — and so is stored in
	// the namespace's own key (in memory only; parts.go).
	pinsApart map[string]struct{}
	// byPVCFacts indexes the facts by PVC for the store's split.
	byPVCFacts *pvcFacts
}

// SnapshotNames returns the names of the snapshots in order. The list is
// kept between events (snapshots come and go one at a time, and sorting
// every name for every state write was a tenth of the correlator's time);
// callers must not change it, and it changes with the next Apply.
func (st *State) SnapshotNames() []string {
	if !st.namesOK || len(st.names) != len(st.Snapshots) {
		st.names, st.namesOK = ordered.Keys(st.Snapshots), true
	}
	return st.names
}

// CertsVersion changes whenever Certs does (in memory: a State read back
// starts again from 0).
func (st *State) CertsVersion() uint64 { return st.certsVersion }

// shareWorkloads returns the namespace's copy of ws, which nobody changes
// once it is on a snapshot.
func (st *State) shareWorkloads(ws []Workload) []Workload {
	if len(ws) == 0 {
		return ws
	}
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.App)
		b.WriteByte(0)
		b.WriteString(w.Pod)
		b.WriteByte(0)
		if o := w.Owner; o != nil {
			b.WriteString(o.Kind)
			b.WriteByte(0)
			b.WriteString(o.Namespace)
			b.WriteByte(0)
			b.WriteString(o.Name)
		}
		b.WriteByte(1)
		b.WriteString(w.Label)
		b.WriteByte(0)
		b.WriteString(w.Commit)
		for _, v := range w.Versions {
			b.WriteByte(0)
			b.WriteString(v)
		}
		b.WriteByte(2)
	}
	key := b.String()
	if shared, ok := st.workloads[key]; ok {
		return shared
	}
	// Lists no snapshot uses any more are dropped now and then: the table
	// starts afresh when it outgrows the snapshots.
	if st.workloads == nil || len(st.workloads) > 2*len(st.Snapshots)+16 {
		st.workloads = map[string][]Workload{}
	}
	st.workloads[key] = ws
	return ws
}

// shareString returns the namespace's copy of v. Every snapshot of a PVC
// repeats its name, size and encryption: one string object each instead of
// one per snapshot — a tenth of the objects the GC marks at 200,000
// events (unique.Make, which they went through before, keeps a copy only
// while a handle to it lives: across a GC cycle it makes a new one).
func (st *State) shareString(v string) string {
	if v == "" {
		return v
	}
	if shared, ok := st.strs[v]; ok {
		return shared
	}
	// Strings no snapshot uses any more are dropped now and then: the
	// table starts afresh when it outgrows the snapshots.
	if st.strs == nil || len(st.strs) > len(st.Snapshots)+16 {
		st.strs = map[string]string{}
	}
	st.strs[v] = v
	return v
}

// NewState returns the empty state of a namespace.
func NewState(namespace string) *State {
	return &State{Namespace: namespace}
}

// Upload is the part of a sarif.uploaded event the rules need.
type Upload struct {
	ID       string `json:"id"`
	EventID  string `json:"event_id"`
	App      string `json:"app"`
	Category string `json:"category"`
	// Keys are the version keys the scan covers, sorted: image digests
	// (sha256:…), "commit:<sha>", "version:<label>", "image:<ref>".
	Keys       []string              `json:"keys"`
	ReceivedAt time.Time             `json:"received_at"`
	Counts     events.SeverityCounts `json:"counts"`
	// Suppressed are the results of Counts that are not open (SARIF
	// suppressions, alerts dismissed on GitHub).
	Suppressed *events.SeverityCounts `json:"suppressed,omitempty"`
	Findings   []Finding              `json:"findings,omitempty"`
}

// Finding is the part of a SARIF finding the rules need.
type Finding struct {
	RuleID   string   `json:"rule_id"`
	Severity string   `json:"severity"`
	CWEs     []string `json:"cwe,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	// Fingerprint identifies the finding for dismissals.
	Fingerprint string `json:"fingerprint,omitempty"`
	Suppressed  bool   `json:"suppressed,omitempty"`
}

// Snapshot is what the snapshot events say about one VolumeSnapshot.
type Snapshot struct {
	Name        string    `json:"name"`
	PVC         string    `json:"pvc,omitempty"`
	EventID     string    `json:"event_id,omitempty"`
	Time        time.Time `json:"time"`
	Completed   bool      `json:"completed,omitempty"`
	RestoreSize string    `json:"restore_size,omitempty"`
	// Encryption is what the snapshotter found about the snapshot's
	// encryption at rest (encrypted, unencrypted, unknown; empty when the
	// event did not say), EncryptionEvidence what it rests on.
	Encryption         string     `json:"encryption,omitempty"`
	EncryptionEvidence []string   `json:"encryption_evidence,omitempty"`
	Workloads          []Workload `json:"workloads,omitempty"`
	// Failed holds the ids of snapshot.failed events.
	Failed []string `json:"failed,omitempty"`
	// Verifications maps a snapshot.verified event id to its result.
	Verifications map[string]bool `json:"verifications,omitempty"`
}

// Observation is one workload.observed fact: from Time on, these pods
// mount the PVC (none: the volume is idle).
type Observation struct {
	EventID   string     `json:"event_id"`
	PVC       string     `json:"pvc"`
	Time      time.Time  `json:"time"`
	Workloads []Workload `json:"workloads,omitempty"`
	// Secrets maps an app to the TLS Secrets its pods mount.
	Secrets map[string][]string `json:"secrets,omitempty"`
}

// Restore is one restore.completed fact: from Time on, PVC holds the data
// of Snapshot (taken of SnapshotPVC at SnapshotTime, when the event said).
type Restore struct {
	ID          string `json:"id"`
	EventID     string `json:"event_id"`
	PVC         string `json:"pvc"`
	Snapshot    string `json:"snapshot"`
	SnapshotPVC string `json:"snapshot_pvc"`
	// SnapshotTime is the restored snapshot's time as the event carried it
	// (nil from producers that predate snapshot_time).
	SnapshotTime *time.Time `json:"snapshot_time,omitempty"`
	Time         time.Time  `json:"time"`
	Incident     string     `json:"incident,omitempty"`
}

// Resolution is an operator's decision that an incident is over.
type Resolution struct {
	EventID string    `json:"event_id"`
	Reason  string    `json:"reason"`
	Actor   string    `json:"actor"`
	Time    time.Time `json:"time"`
}

// Dismissal is an operator's decision that a finding is a false positive.
type Dismissal struct {
	EventID     string    `json:"event_id"`
	App         string    `json:"app"`
	RuleID      string    `json:"rule_id"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Reason      string    `json:"reason"`
	Actor       string    `json:"actor"`
	Time        time.Time `json:"time"`
}

func dismissalKey(app, rule, fingerprint string) string {
	return app + "\x00" + rule + "\x00" + fingerprint
}

// Workload is a pod that mounted the volume, with what it ran.
type Workload struct {
	App   string            `json:"app"`
	Pod   string            `json:"pod,omitempty"`
	Owner *events.ObjectRef `json:"owner,omitempty"`
	Label string            `json:"label,omitempty"`
	// Commit is the commit the pod's version was built from (CommitOf its
	// join annotations); an upload's commit_sha joins to it.
	Commit   string   `json:"commit,omitempty"`
	Versions []string `json:"versions"`
}

// Cert is what the certificate events say about one TLS Secret.
type Cert struct {
	Secret string `json:"secret"`
	// Observations are keyed by serial, then by event id (pointers: a
	// small map of 96-byte values takes a kilobyte).
	Observations map[string]map[string]*CertObservation `json:"observations"`
	Users        Users                                  `json:"users"`
	// Rotated maps an old serial to the event that reported its rotation.
	Rotated map[string]string `json:"rotated,omitempty"`
	// Rotations maps an old serial to what that event said of the rotation
	// (absent in states written before it was kept).
	Rotations map[string]RotationRecord `json:"rotations,omitempty"`
	// Failures maps a rotation.failed event id to its reason.
	Failures map[string]string `json:"failures,omitempty"`
}

// RotationRecord is one certificate.rotated event: when, from which serial
// to which, how, and whether the served certificate was checked after.
type RotationRecord struct {
	EventID   string    `json:"event_id"`
	At        time.Time `json:"at"`
	OldSerial string    `json:"old_serial"`
	NewSerial string    `json:"new_serial,omitempty"`
	Method    string    `json:"method,omitempty"`
	// Checked: certwatcher connected to the Service after the rollout;
	// Verified: it served the new serial.
	Checked     bool   `json:"checked"`
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verify_error,omitempty"`
}

// CertObservation is one certificate.expiring event.
type CertObservation struct {
	NotAfter    time.Time  `json:"not_after"`
	DaysLeft    float64    `json:"days_left"`
	Threshold   string     `json:"threshold"`
	CertManager string     `json:"cert_manager,omitempty"`
	RenewalTime *time.Time `json:"renewal_time,omitempty"`
	// ObservedAt is the event's time (zero in states written before it
	// was kept: then not_after − days_left stands in).
	ObservedAt time.Time `json:"observed_at,omitzero"`
}

// WorkloadRef names a workload.
type WorkloadRef = events.ObjectRef

// Users are the workloads and pods that mount a Secret.
type Users struct {
	Workloads []WorkloadRef `json:"workloads,omitempty"`
	Pods      []string      `json:"pods,omitempty"`
}

// Ledger is the set of decisions in force.
type Ledger struct {
	// Pinned maps a snapshot to why it is pinned.
	Pinned map[string]Pin `json:"pinned,omitempty"`
	// Incidents maps an incident id to its status.
	Incidents map[string]IncidentRecord `json:"incidents,omitempty"`
}

// IncidentRecord is an incident's status and when it started (the creation
// time of the first snapshot that ran a vulnerable version).
type IncidentRecord struct {
	App    string    `json:"app"`
	Status string    `json:"status"`
	Start  time.Time `json:"start"`
}

// Pin says why a snapshot is pinned.
type Pin struct {
	PVC      string   `json:"pvc,omitempty"`
	Reason   string   `json:"reason"`
	Incident string   `json:"incident,omitempty"`
	Causes   []string `json:"causes,omitempty"`
}

// Incident statuses in the Ledger.
const (
	StatusOpen   = "open"
	StatusClosed = "closed"
)

// Journal is path-dependent bookkeeping.
type Journal struct {
	// PinGeneration counts the pins of each snapshot, so a snapshot pinned
	// again after an unpin gets a new decision id.
	PinGeneration map[string]int `json:"pin_generation,omitempty"`
	// Published holds the ids of one-off decisions already published
	// (restore recommendations, rotation requests).
	Published map[string]bool `json:"published,omitempty"`
	// IncidentGeneration counts the openings of each incident id — the
	// first, and each time the facts open a closed one again — so each
	// open/close cycle has decision ids of its own (incidentOpens).
	IncidentGeneration map[string]int `json:"incident_generation,omitempty"`
	// Recommended is the current restore recommendation of each incident
	// and PVC (key: incident id, NUL, PVC).
	Recommended map[string]Recommendation `json:"recommended,omitempty"`
}

// Recommendation is a restore.recommended decision in force.
type Recommendation struct {
	ID       string `json:"id"`
	Snapshot string `json:"snapshot"`
	Revision int    `json:"revision"`
}

// ready reports whether the snapshot can be restored: it completed, did not
// fail, and no restore test failed.
func (s *Snapshot) ready() bool {
	if !s.Completed || len(s.Failed) > 0 {
		return false
	}
	for _, ok := range s.Verifications {
		if !ok {
			return false
		}
	}
	return true
}

// ran reports whether app ran on the volume.
func (s *Snapshot) ran(app string) bool {
	for _, w := range s.Workloads {
		if w.App == app {
			return true
		}
	}
	return false
}

func snapshotLess(a, b *Snapshot) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}

func setRemove(list []string, v string) []string {
	if i, found := slices.BinarySearch(list, v); found {
		return slices.Delete(list, i, i+1)
	}
	return list
}

func setAdd(list []string, v string) ([]string, bool) {
	i, found := slices.BinarySearch(list, v)
	if found {
		return list, false
	}
	return slices.Insert(list, i, v), true
}
