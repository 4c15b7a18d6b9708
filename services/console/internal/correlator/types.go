package correlator

import "time"

// Verdicts and classes as the correlator names them.
const (
	Vulnerable = "vulnerable"
	Clean      = "clean"
	Unknown    = "unknown"
	Tainted    = "tainted"
)

// AppSummary is one line of GET /v1/apps.
type AppSummary struct {
	Namespace       string               `json:"namespace"`
	App             string               `json:"app"`
	Running         []string             `json:"running"`
	Vulnerable      []string             `json:"vulnerable_versions,omitempty"`
	KnownGood       map[string][]string  `json:"known_good,omitempty"`
	OpenIncidents   []string             `json:"open_incidents,omitempty"`
	Snapshots       int                  `json:"snapshots"`
	RunningVerdicts map[string]string    `json:"running_verdicts,omitempty"`
	KnownGoodTimes  map[string]time.Time `json:"known_good_times,omitempty"`
	RunningFindings struct {
		Critical int `json:"critical"`
		High     int `json:"high"`
		Open     int `json:"open"`
	} `json:"running_findings"`
	CertNotAfter *time.Time `json:"cert_not_after,omitempty"`
}

// Posture is GET /v1/apps/{namespace}/{app}.
type Posture struct {
	Namespace    string              `json:"namespace"`
	App          string              `json:"app"`
	Running      []string            `json:"running"`
	Versions     []Version           `json:"versions"`
	Snapshots    []Snapshot          `json:"snapshots"`
	KnownGood    map[string][]string `json:"known_good,omitempty"`
	Incidents    []Incident          `json:"incidents,omitempty"`
	Secrets      []string            `json:"secrets,omitempty"`
	Pinned       map[string]Pin      `json:"pinned,omitempty"`
	Certificates []Certificate       `json:"certificates,omitempty"`
}

// Version is a version with its verdict and the uploads behind it.
type Version struct {
	Version string   `json:"version"`
	Verdict string   `json:"verdict"`
	Uploads []Upload `json:"uploads,omitempty"`
}

// Upload is the latest upload of one SARIF category for a version.
type Upload struct {
	UploadID   string    `json:"upload_id"`
	EventID    string    `json:"event_id"`
	Category   string    `json:"category,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	Vulnerable bool      `json:"vulnerable"`
	RuleIDs    []string  `json:"rule_ids,omitempty"`
	Severities []string  `json:"severities,omitempty"`
	Counts     struct {
		Critical int `json:"critical"`
		High     int `json:"high"`
		Medium   int `json:"medium"`
		Low      int `json:"low"`
	} `json:"counts"`
	Open int `json:"open"`
}

// Snapshot is a snapshot's class for one application.
type Snapshot struct {
	Name     string    `json:"name"`
	PVC      string    `json:"pvc"`
	Time     time.Time `json:"time"`
	Ready    bool      `json:"ready"`
	Class    string    `json:"class"`
	EventID  string    `json:"event_id"`
	Versions []struct {
		Version string `json:"version"`
		Verdict string `json:"verdict"`
	} `json:"versions"`
}

// Pin is why a snapshot is pinned.
type Pin struct {
	PVC      string   `json:"pvc"`
	Reason   string   `json:"reason"`
	Incident string   `json:"incident,omitempty"`
	Causes   []string `json:"causes,omitempty"`
}

// Reason is one finding behind an incident.
type Reason struct {
	UploadID   string   `json:"upload_id,omitempty"`
	EventID    string   `json:"event_id"`
	Version    string   `json:"version,omitempty"`
	RuleIDs    []string `json:"rule_ids,omitempty"`
	Severities []string `json:"severities,omitempty"`
	Text       string   `json:"text"`
}

// Span is one version that wrote to a volume's data, and when.
type Span struct {
	PVC     string     `json:"pvc"`
	App     string     `json:"app"`
	Version string     `json:"version"`
	Verdict string     `json:"verdict"`
	From    time.Time  `json:"from"`
	To      *time.Time `json:"to,omitempty"`
	Via     string     `json:"via,omitempty"`
	Note    string     `json:"note,omitempty"`
}

// Incident is GET /v1/incidents/{id} (and an app's incidents).
type Incident struct {
	Namespace      string     `json:"namespace,omitempty"`
	ID             string     `json:"id"`
	App            string     `json:"app"`
	Open           bool       `json:"open"`
	Versions       []string   `json:"versions"`
	Start          string     `json:"start_snapshot"`
	StartTime      time.Time  `json:"start_time"`
	End            string     `json:"end_snapshot,omitempty"`
	Reasons        []Reason   `json:"reasons"`
	Causes         []string   `json:"causes"`
	RestorePoints  []Snapshot `json:"restore_points,omitempty"`
	SecretExposure bool       `json:"secret_exposure,omitempty"`
	Secrets        []string   `json:"secrets,omitempty"`
	CloseReason    string     `json:"close_reason,omitempty"`
	Lineage        []Span     `json:"lineage,omitempty"`
	ClosedAt       time.Time  `json:"closed_at,omitzero"`
}

// Certificate is a TLS Secret's certificate with the days it has left.
type Certificate struct {
	Secret        string     `json:"secret"`
	Serial        string     `json:"serial"`
	NotAfter      time.Time  `json:"not_after"`
	DaysLeftNow   float64    `json:"days_left_now"`
	ObservedAt    time.Time  `json:"observed_at"`
	CertManager   string     `json:"cert_manager,omitempty"`
	RenewalTime   *time.Time `json:"renewal_time,omitempty"`
	RenewsInTime  bool       `json:"renews_in_time,omitempty"`
	Rotated       bool       `json:"rotated,omitempty"`
	NeedsRotation bool       `json:"needs_rotation,omitempty"`
	Reason        string     `json:"reason,omitempty"`
	Users         struct {
		Workloads []struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"workloads,omitempty"`
		Pods []string `json:"pods,omitempty"`
	} `json:"users"`
	// LastRotation is the Secret's newest rotation.
	LastRotation *Rotation `json:"last_rotation,omitempty"`
}

// Rotation is one rotation of a certificate and its verification.
type Rotation struct {
	EventID     string    `json:"event_id"`
	At          time.Time `json:"at"`
	OldSerial   string    `json:"old_serial"`
	NewSerial   string    `json:"new_serial,omitempty"`
	Method      string    `json:"method,omitempty"`
	Checked     bool      `json:"checked"`
	Verified    bool      `json:"verified"`
	VerifyError string    `json:"verify_error,omitempty"`
}

// NamespacedCertificate is a line of GET /v1/certificates.
type NamespacedCertificate struct {
	Namespace string `json:"namespace"`
	Certificate
}

// RestorePlan is one recommended restore of an open incident.
type RestorePlan struct {
	Incident       string    `json:"incident"`
	PVC            string    `json:"pvc"`
	VolumeSnapshot string    `json:"volume_snapshot"`
	SnapshotTime   time.Time `json:"snapshot_time"`
	Manifest       string    `json:"manifest"`
	Steps          []string  `json:"steps,omitempty"`
}

// Why is GET /v1/snapshots/{namespace}/{name}/why.
type Why struct {
	Namespace string `json:"namespace"`
	Snapshot  string `json:"snapshot"`
	Pinned    bool   `json:"pinned"`
	Pin       *Pin   `json:"pin,omitempty"`
	Apps      []struct {
		App       string    `json:"app"`
		Class     string    `json:"class"`
		Ready     bool      `json:"ready"`
		KnownGood bool      `json:"known_good"`
		Versions  []Version `json:"versions"`
		Incidents []string  `json:"incidents,omitempty"`
		Summary   string    `json:"summary"`
	} `json:"apps"`
}

// RestoreRequest is the body of POST /v1/restores.
type RestoreRequest struct {
	IncidentID string `json:"incident_id"`
	PVC        string `json:"pvc"`
	Snapshot   string `json:"snapshot,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	Reason     string `json:"reason"`
}

// RestoreAccepted is the 202 answer of POST /v1/restores.
type RestoreAccepted struct {
	RequestID string `json:"request_id"`
	Restore   string `json:"restore"`
	EventID   string `json:"event_id"`
}

// DismissRequest is the body of POST /v1/findings/dismiss.
type DismissRequest struct {
	Namespace   string `json:"namespace"`
	App         string `json:"app"`
	RuleID      string `json:"rule_id"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Reason      string `json:"reason"`
}

// UploadJoin is one line of GET /v1/uploads: an upload that named no
// application (GitHub's uploaders name a repository and a commit) and how
// the correlator joined it — or why not.
type UploadJoin struct {
	UploadID   string `json:"upload_id"`
	Repository string `json:"repository"`
	Category   string `json:"category,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	// State is "joined" or "not joined"; Reason says why not.
	State    string `json:"state"`
	Reason   string `json:"reason,omitempty"`
	JoinedTo []struct {
		Namespace string `json:"namespace"`
		App       string `json:"app"`
	} `json:"joined_to,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}
