package api

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/restoreplan"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// Store reads the correlator's state.
type Store interface {
	Namespaces(ctx context.Context) ([]string, error)
	State(ctx context.Context, namespace string) (*model.State, bool, error)
	Rules() model.Rules
}

// Server answers the API.
type Server struct {
	store Store
	pub   events.Publisher
	log   *slog.Logger
	now   func() time.Time
	cache viewCache
}

// Option configures Register.
type Option func(*Server)

// WithPublisher lets operators write (resolve an incident, dismiss a
// finding): each write becomes an event p publishes. Without it the write
// routes answer 503.
func WithPublisher(p events.Publisher) Option { return func(s *Server) { s.pub = p } }

// Register adds the /v1 routes, behind tokens, to mux: reads take a token
// of any scope, writes an operator token.
func Register(mux *http.ServeMux, store Store, tokens Tokens, log *slog.Logger, now func() time.Time, opts ...Option) {
	s := &Server{store: store, log: log, now: now}
	for _, o := range opts {
		o(s)
	}
	read := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, tokens.require(ScopeRead, h)) }
	write := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, tokens.require(ScopeOperator, h)) }
	read("GET /v1/apps", s.apps)
	read("GET /v1/apps/{namespace}/{app}", validated(s.app))
	read("GET /v1/apps/{namespace}/{app}/restore-plan", validated(s.restorePlan))
	read("GET /v1/incidents", validated(s.incidents))
	read("GET /v1/incidents/{id}", validated(s.incident))
	read("GET /v1/snapshots/{namespace}/{name}/why", validated(s.why))
	read("GET /v1/uploads", s.uploadJoins)
	read("GET /v1/uploads/{upload}", s.uploadJoin)
	write("POST /v1/incidents/{id}/resolve", validated(s.resolve))
	write("POST /v1/findings/dismiss", s.dismiss)
	s.registerCertificates(read, write)
	write("POST /v1/restores", s.requestRestore)
}

// validated answers 400 with the reason when a path or query identifier
// breaks its Kubernetes naming rule (checkRequest), so that nothing a
// caller sends reaches a KV key or a subject unchecked; otherwise it runs h.
func validated(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := checkRequest(r); err != nil {
			writeProblem(w, r, service.Problem{Type: service.ProblemBase + "invalid-parameter", Title: "Invalid request parameter",
				Status: http.StatusBadRequest, Detail: err.Error()})
			return
		}
		h(w, r)
	}
}

// checkRequest checks every identifier a route takes: the namespace, app,
// snapshot name and incident id in the path, the status filter in the query.
func checkRequest(r *http.Request) error {
	if strings.Contains(r.Pattern, "{namespace}") {
		if err := checkNamespace(r.PathValue("namespace")); err != nil {
			return err
		}
	}
	if strings.Contains(r.Pattern, "{app}") {
		if err := checkApp(r.PathValue("app")); err != nil {
			return err
		}
	}
	if strings.Contains(r.Pattern, "{name}") {
		if err := checkObjectName("snapshot", r.PathValue("name")); err != nil {
			return err
		}
	}
	if strings.Contains(r.Pattern, "{secret}") {
		if err := checkObjectName("secret", r.PathValue("secret")); err != nil {
			return err
		}
	}
	if strings.Contains(r.Pattern, "{id}") {
		if err := checkObjectName("incident", r.PathValue("id")); err != nil {
			return err
		}
	}
	return checkStatus(r.URL.Query().Get("status"))
}

// AppSummary is one line of GET /v1/apps.
type AppSummary struct {
	Namespace     string              `json:"namespace"`
	App           string              `json:"app"`
	Running       []string            `json:"running"`
	Vulnerable    []string            `json:"vulnerable_versions,omitempty"`
	KnownGood     map[string][]string `json:"known_good,omitempty"`
	OpenIncidents []string            `json:"open_incidents,omitempty"`
	Snapshots     int                 `json:"snapshots"`
	// What a fleet view shows without reading each app's posture: the
	// verdict of each running version, the time of each PVC's newest
	// known-good snapshot, the findings of the running versions' latest
	// uploads, and the soonest certificate expiry of the app's Secrets.
	RunningVerdicts map[string]string    `json:"running_verdicts,omitempty"`
	KnownGoodTimes  map[string]time.Time `json:"known_good_times,omitempty"`
	RunningFindings RunningFindings      `json:"running_findings"`
	CertNotAfter    *time.Time           `json:"cert_not_after,omitempty"`
}

// RunningFindings counts the findings of the running versions' latest
// uploads: critical and high as reported, open as the threshold counts them
// (not suppressed, not dismissed).
type RunningFindings struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Open     int `json:"open"`
}

// Posture is GET /v1/apps/{namespace}/{app}.
type Posture struct {
	model.AppView
	Pinned       map[string]model.Pin `json:"pinned,omitempty"`
	Certificates []CertPosture        `json:"certificates,omitempty"`
}

// CertPosture is a certificate with the days it has left now.
type CertPosture struct {
	model.CertView
	DaysLeftNow float64 `json:"days_left_now"`
}

// Incident is an incident with where it happened.
type Incident struct {
	Namespace string `json:"namespace"`
	model.IncidentView
}

// Why is GET /v1/snapshots/{namespace}/{name}/why.
type Why struct {
	Namespace string     `json:"namespace"`
	Snapshot  string     `json:"snapshot"`
	Pinned    bool       `json:"pinned"`
	Pin       *model.Pin `json:"pin,omitempty"`
	// Apps says, for each app that ran on the volume, the snapshot's class
	// and the verdict of every version with the uploads behind it.
	Apps []WhyApp `json:"apps"`
}

// WhyApp is a snapshot seen from one app.
type WhyApp struct {
	App       string              `json:"app"`
	Class     string              `json:"class"`
	Ready     bool                `json:"ready"`
	KnownGood bool                `json:"known_good"`
	Versions  []model.VersionView `json:"versions"`
	// Incidents lists the incidents it is the restore point of or that
	// started on it.
	Incidents []string `json:"incidents,omitempty"`
	Summary   string   `json:"summary"`
}

// RestorePlan is one recommended restore of an open incident.
type RestorePlan struct {
	Incident       string    `json:"incident"`
	PVC            string    `json:"pvc"`
	VolumeSnapshot string    `json:"volume_snapshot"`
	SnapshotTime   time.Time `json:"snapshot_time"`
	restoreplan.Plan
	Reasons []events.Reason `json:"reasons"`
}

func (s *Server) apps(w http.ResponseWriter, r *http.Request) {
	views, err := s.views(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []AppSummary{}
	for _, v := range views {
		for _, av := range v.Apps {
			sum := AppSummary{Namespace: av.Namespace, App: av.App, Running: av.Running, KnownGood: av.KnownGood, Snapshots: len(av.Snapshots)}
			for _, vv := range av.Versions {
				if vv.Verdict == model.Vulnerable {
					sum.Vulnerable = append(sum.Vulnerable, vv.Version)
				}
			}
			fleetFields(&sum, v, av)
			for _, inc := range av.Incidents {
				if inc.Open {
					sum.OpenIncidents = append(sum.OpenIncidents, inc.ID)
				}
			}
			out = append(out, sum)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// fleetFields fills the summary's running verdicts, known-good times,
// running findings and soonest certificate expiry from the app's view.
func fleetFields(sum *AppSummary, v model.View, av model.AppView) {
	for _, vv := range av.Versions {
		if !slices.Contains(av.Running, vv.Version) {
			continue
		}
		if sum.RunningVerdicts == nil {
			sum.RunningVerdicts = map[string]string{}
		}
		sum.RunningVerdicts[vv.Version] = vv.Verdict
		for _, u := range vv.Uploads {
			sum.RunningFindings.Critical += u.Counts.Critical
			sum.RunningFindings.High += u.Counts.High
			sum.RunningFindings.Open += u.Open
		}
	}
	for _, r := range av.Running {
		if _, ok := sum.RunningVerdicts[r]; !ok {
			if sum.RunningVerdicts == nil {
				sum.RunningVerdicts = map[string]string{}
			}
			sum.RunningVerdicts[r] = model.Unknown
		}
	}
	for pvc, names := range av.KnownGood {
		for _, n := range names {
			sv, ok := av.Snapshot(n)
			if !ok {
				continue
			}
			if sum.KnownGoodTimes == nil {
				sum.KnownGoodTimes = map[string]time.Time{}
			}
			if t, seen := sum.KnownGoodTimes[pvc]; !seen || sv.Time.After(t) {
				sum.KnownGoodTimes[pvc] = sv.Time
			}
		}
	}
	for _, cv := range v.Certificates {
		if slices.Contains(av.Secrets, cv.Secret) && (sum.CertNotAfter == nil || cv.NotAfter.Before(*sum.CertNotAfter)) {
			na := cv.NotAfter
			sum.CertNotAfter = &na
		}
	}
}

func (s *Server) appView(w http.ResponseWriter, r *http.Request) (*model.State, model.View, model.AppView, bool) {
	ns, app := r.PathValue("namespace"), r.PathValue("app")
	st, ok, err := s.store.State(r.Context(), ns)
	if err != nil {
		s.fail(w, r, err)
		return nil, model.View{}, model.AppView{}, false
	}
	if ok {
		v := model.Derive(s.store.Rules(), st)
		if av, found := v.App(app); found {
			return st, v, av, true
		}
	}
	notFound(w, r, "no application "+app+" in namespace "+ns)
	return nil, model.View{}, model.AppView{}, false
}

func (s *Server) app(w http.ResponseWriter, r *http.Request) {
	st, v, av, ok := s.appView(w, r)
	if !ok {
		return
	}
	p := Posture{AppView: av, Pinned: map[string]model.Pin{}}
	for _, sv := range av.Snapshots {
		if pin, ok := st.Ledger.Pinned[sv.Name]; ok {
			p.Pinned[sv.Name] = pin
		}
	}
	now := s.now()
	for _, cv := range v.Certificates {
		if slices.Contains(av.Secrets, cv.Secret) {
			p.Certificates = append(p.Certificates, CertPosture{CertView: cv, DaysLeftNow: cv.NotAfter.Sub(now).Hours() / 24})
		}
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) restorePlan(w http.ResponseWriter, r *http.Request) {
	_, _, av, ok := s.appView(w, r)
	if !ok {
		return
	}
	out := []RestorePlan{}
	for _, inc := range av.Incidents {
		if !inc.Open {
			continue
		}
		for _, rp := range inc.RestorePoints {
			plan, err := restoreplan.For(restoreplan.Snapshot{Namespace: av.Namespace, VolumeSnapshot: rp.Name, PVC: rp.PVC, RestoreSize: rp.RestoreSize, Workloads: rp.Workloads})
			if err != nil {
				continue
			}
			out = append(out, RestorePlan{Incident: inc.ID, PVC: rp.PVC, VolumeSnapshot: rp.Name, SnapshotTime: rp.Time, Plan: plan, Reasons: inc.Reasons})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) incidents(w http.ResponseWriter, r *http.Request) {
	views, err := s.views(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := r.URL.Query().Get("status")
	out := []Incident{}
	for _, v := range views {
		for _, av := range v.Apps {
			for _, inc := range av.Incidents {
				if status == "open" && !inc.Open || status == "closed" && inc.Open {
					continue
				}
				out = append(out, Incident{Namespace: v.Namespace, IncidentView: inc})
			}
		}
	}
	slices.SortFunc(out, func(a, b Incident) int { return cmp.Or(b.StartTime.Compare(a.StartTime), cmp.Compare(a.ID, b.ID)) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) why(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	st, ok, err := s.store.State(r.Context(), ns)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		notFound(w, r, "nothing known about namespace "+ns)
		return
	}
	v := model.Derive(s.store.Rules(), st)
	out := Why{Namespace: ns, Snapshot: name, Apps: []WhyApp{}}
	if pin, ok := st.Ledger.Pinned[name]; ok {
		out.Pinned, out.Pin = true, &pin
	}
	for _, av := range v.Apps {
		sv, ok := av.Snapshot(name)
		if !ok {
			continue
		}
		wa := WhyApp{App: av.App, Class: sv.Class, Ready: sv.Ready, KnownGood: slices.Contains(av.KnownGood[sv.PVC], name)}
		for _, vv := range sv.Versions {
			i := slices.IndexFunc(av.Versions, func(x model.VersionView) bool { return x.Version == vv.Version })
			if i >= 0 {
				wa.Versions = append(wa.Versions, av.Versions[i])
			} else {
				wa.Versions = append(wa.Versions, model.VersionView{Version: vv.Version, Verdict: vv.Verdict})
			}
		}
		for _, inc := range av.Incidents {
			if inc.Start == name || slices.ContainsFunc(inc.RestorePoints, func(rp model.SnapshotView) bool { return rp.Name == name }) {
				wa.Incidents = append(wa.Incidents, inc.ID)
			}
		}
		wa.Summary = summary(sv, wa)
		out.Apps = append(out.Apps, wa)
	}
	if len(out.Apps) == 0 && !out.Pinned {
		notFound(w, r, "no snapshot "+name+" in namespace "+ns)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func summary(sv model.SnapshotView, wa WhyApp) string {
	switch sv.Class {
	case model.Tainted:
		var vuln []string
		for _, v := range wa.Versions {
			if v.Verdict == model.Vulnerable {
				vuln = append(vuln, v.Version)
			}
		}
		return "tainted: it ran vulnerable versions " + strings.Join(vuln, ", ")
	case model.Clean:
		s := "clean: every version it ran was scanned clean"
		if !sv.Ready {
			s += ", but it is not ready (failed, or a restore test failed)"
		}
		return s
	}
	var unknown []string
	for _, v := range wa.Versions {
		if v.Verdict == model.Unknown {
			unknown = append(unknown, v.Version)
		}
	}
	if len(unknown) == 0 {
		return "unknown: no version of the app was recorded on it"
	}
	return "unknown: no scan of versions " + strings.Join(unknown, ", ")
}

// fail answers 503: the state could not be read (NATS down, for one); the
// client may retry.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("api: state unavailable", "path", r.Pattern, "error", err)
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	writeProblem(w, r, service.Problem{Type: service.ProblemBase + "unavailable", Title: "State unavailable",
		Status: http.StatusServiceUnavailable, Detail: "the correlator's state could not be read; retry later"})
}

// retryAfterSeconds is sent with every 503.
const retryAfterSeconds = 5

func notFound(w http.ResponseWriter, r *http.Request, detail string) {
	writeProblem(w, r, service.Problem{Type: service.ProblemBase + "not-found", Title: "Not found",
		Status: http.StatusNotFound, Detail: detail})
}

// writeProblem answers every error of the API as RFC 9457 problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p service.Problem) {
	service.WriteProblem(w, r, p)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
