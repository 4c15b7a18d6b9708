package web

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stateguard/stateguard/services/console/internal/correlator"
	"github.com/stateguard/stateguard/services/console/internal/streams"
)

func itoa(n int) string { return strconv.Itoa(n) }

// timed measures a wait on the correlator for the page.
func (s *Server) timed(page string, f func() error) error {
	start := time.Now()
	err := f()
	s.metrics.apiTime.WithLabelValues(page).Observe(time.Since(start).Seconds())
	return err
}

type fleetData struct {
	FleetPage
	Query    Query
	Sorts    []string
	Postures []string
	Now      time.Time
	PrevURL  string
	NextURL  string
}

// Age says how old t is, in days or hours.
func (d fleetData) Age(t time.Time) string { return age(d.Now, t) }

func age(now, t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	a := now.Sub(t)
	switch {
	case a >= 48*time.Hour:
		return strconv.Itoa(int(a.Hours()/24)) + " d"
	case a >= time.Hour:
		return strconv.Itoa(int(a.Hours())) + " h"
	}
	return strconv.Itoa(max(int(a.Minutes()), 0)) + " min"
}

// Days says how many days are left until t.
func (d fleetData) Days(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return strconv.FormatFloat(t.Sub(d.Now).Hours()/24, 'f', 1, 64) + " d"
}

// fleetRows reads the fleet from the correlator (or the cache), with the
// token of the session asking.
func (s *Server) fleetRows(r *http.Request) ([]Row, error) {
	ss := sessionOf(r)
	return s.fleet.get(s.now(), func(ctx context.Context) ([]Row, error) {
		var apps []correlator.AppSummary
		err := s.timed("fleet", func() (err error) { apps, err = s.api.Apps(ctx, ss.token); return })
		if err != nil {
			return nil, err
		}
		now := s.now()
		rows := make([]Row, len(apps))
		for i, a := range apps {
			rows[i] = NewRow(a, now)
		}
		return rows, nil
	}, func() { s.live.publish("fleet") })
}

func (s *Server) fleetPage(w http.ResponseWriter, r *http.Request) {
	rows, err := s.fleetRows(r)
	if err != nil {
		s.failAPI(w, r, err)
		return
	}
	q := Query{Namespace: r.FormValue("namespace"), Posture: r.FormValue("posture"), Sort: r.FormValue("sort"), PageSize: s.pageSize}
	q.Page, _ = strconv.Atoi(r.FormValue("page"))
	if !slices.Contains(sortOrders, q.Sort) {
		q.Sort = "posture"
	}
	d := fleetData{FleetPage: Fleet(rows, q), Query: q, Sorts: sortOrders, Postures: []string{PostureIncident, PostureAtRisk, PostureOK}, Now: s.now()}
	link := func(page int) string {
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(page))
		return "/fleet?" + v.Encode()
	}
	if d.Page > 1 {
		d.PrevURL = link(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.NextURL = link(d.Page + 1)
	}
	s.render(w, r, http.StatusOK, "fleet", "Fleet", "fleet", d)
}

type appData struct {
	correlator.Posture
	Timeline Timeline
	Verdicts map[string]string
	Now      time.Time
}

func (s *Server) appPage(w http.ResponseWriter, r *http.Request) {
	ss := sessionOf(r)
	var p correlator.Posture
	err := s.timed("app", func() (err error) {
		p, err = s.api.App(r.Context(), ss.token, r.PathValue("namespace"), r.PathValue("app"))
		return
	})
	if err != nil {
		s.failAPI(w, r, err)
		return
	}
	slices.SortFunc(p.Snapshots, func(a, b correlator.Snapshot) int { return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.Name, b.Name)) })
	d := appData{Posture: p, Timeline: BuildTimeline(p, s.now()), Verdicts: map[string]string{}, Now: s.now()}
	for _, v := range p.Versions {
		d.Verdicts[v.Version] = v.Verdict
	}
	s.render(w, r, http.StatusOK, "app", p.Namespace+"/"+p.App, "fleet", d)
}

func (s *Server) whyPage(w http.ResponseWriter, r *http.Request) {
	ss := sessionOf(r)
	var why correlator.Why
	err := s.timed("why", func() (err error) {
		why, err = s.api.Why(r.Context(), ss.token, r.PathValue("namespace"), r.PathValue("name"))
		return
	})
	if err != nil {
		s.failAPI(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "why", "Why "+why.Snapshot, "fleet", why)
}

type incidentData struct {
	correlator.Incident
	Plans   []correlator.RestorePlan
	Steps   []streams.Step
	Revs    []streams.Step
	Rules   []string
	Streams bool
}

func (s *Server) incidentPage(w http.ResponseWriter, r *http.Request) {
	ss := sessionOf(r)
	var inc correlator.Incident
	err := s.timed("incident", func() (err error) { inc, err = s.api.Incident(r.Context(), ss.token, r.PathValue("id")); return })
	if err != nil {
		s.failAPI(w, r, err)
		return
	}
	d := incidentData{Incident: inc, Streams: s.streams != nil}
	if inc.Open {
		var plans []correlator.RestorePlan
		err := s.timed("incident", func() (err error) {
			plans, err = s.api.RestorePlans(r.Context(), ss.token, inc.Namespace, inc.App)
			return
		})
		if err != nil {
			s.failAPI(w, r, err)
			return
		}
		for _, p := range plans {
			if p.Incident == inc.ID {
				d.Plans = append(d.Plans, p)
			}
		}
	}
	if s.streams != nil {
		for _, st := range s.streams.Steps(inc.ID) {
			if strings.Contains(st.Type, ".restore.recommended.") {
				d.Revs = append(d.Revs, st)
			} else if strings.Contains(st.Type, ".restore.") {
				d.Steps = append(d.Steps, st)
			}
		}
	}
	for _, rs := range inc.Reasons {
		for _, id := range rs.RuleIDs {
			if !slices.Contains(d.Rules, id) {
				d.Rules = append(d.Rules, id)
			}
		}
	}
	s.render(w, r, http.StatusOK, "incident", "Incident "+inc.ID, "fleet", d)
}

// confirmData is the confirmation step of an action: what will happen,
// and the same form again with confirm=yes.
type confirmData struct {
	Action   string
	Incident string
	What     string
	Fields   [][2]string
}

// done is the result page of an action.
type doneData struct {
	Incident string
	What     string
	Lines    []string
}

func (s *Server) confirm(w http.ResponseWriter, r *http.Request, action, what string, fields ...string) bool {
	if r.PostFormValue("confirm") == "yes" {
		return true
	}
	d := confirmData{Action: action, Incident: r.PathValue("id"), What: what}
	for i := 0; i+1 < len(fields); i += 2 {
		d.Fields = append(d.Fields, [2]string{fields[i], fields[i+1]})
	}
	s.render(w, r, http.StatusOK, "confirm", "Confirm: "+action, "fleet", d)
	return false
}

// restore forwards POST /v1/restores after the confirmation step.
func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	req := correlator.RestoreRequest{IncidentID: id, PVC: r.PostFormValue("pvc"), Snapshot: r.PostFormValue("snapshot"),
		Namespace: r.PostFormValue("namespace"), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	if req.Reason == "" {
		req.Reason = "restore of incident " + id + " from the console"
	}
	if !s.confirm(w, r, "restore", "Restore PVC "+req.PVC+" of incident "+id+" from snapshot "+req.Snapshot+
		". The snapshotter replaces the claim's data with the snapshot's; what was written since is set aside.",
		"pvc", req.PVC, "snapshot", req.Snapshot, "namespace", req.Namespace, "reason", req.Reason) {
		return
	}
	acc, err := s.api.Restore(r.Context(), sessionOf(r).token, req)
	if err != nil {
		s.actionFailed(w, r, "restore", err)
		return
	}
	s.metrics.actions.WithLabelValues("restore", "accepted").Inc()
	s.log.Info("console: restore requested", "incident", id, "pvc", req.PVC, "request_id", acc.RequestID, "event_id", acc.EventID, "user", sessionOf(r).user)
	s.render(w, r, http.StatusAccepted, "done", "Restore requested", "fleet", doneData{Incident: id, What: "Restore requested",
		Lines: []string{"request " + acc.RequestID, "restore " + acc.Restore, "event " + acc.EventID,
			"The incident page follows the restore's phases."}})
}

// resolve forwards POST /v1/incidents/{id}/resolve after the confirmation.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		s.fail(w, r, nil, http.StatusBadRequest, "A reason is required", "say why the incident is over without a restore")
		return
	}
	if !s.confirm(w, r, "resolve", "Resolve incident "+id+" without a restore, because: "+reason, "reason", reason) {
		return
	}
	if err := s.api.Resolve(r.Context(), sessionOf(r).token, id, reason); err != nil {
		s.actionFailed(w, r, "resolve", err)
		return
	}
	s.metrics.actions.WithLabelValues("resolve", "accepted").Inc()
	s.log.Info("console: incident resolved", "incident", id, "user", sessionOf(r).user)
	s.render(w, r, http.StatusAccepted, "done", "Incident resolved", "fleet", doneData{Incident: id, What: "Resolution recorded",
		Lines: []string{"The incident closes once no vulnerable version of it runs."}})
}

// dismiss forwards POST /v1/findings/dismiss after the confirmation.
func (s *Server) dismiss(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	req := correlator.DismissRequest{Namespace: r.PostFormValue("namespace"), App: r.PostFormValue("app"), RuleID: r.PostFormValue("rule_id"),
		Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	if req.Reason == "" || req.RuleID == "" {
		s.fail(w, r, nil, http.StatusBadRequest, "A rule and a reason are required", "say which rule's findings are false positives, and why")
		return
	}
	if !s.confirm(w, r, "dismiss", "Dismiss every finding of rule "+req.RuleID+" for "+req.Namespace+"/"+req.App+", because: "+req.Reason,
		"namespace", req.Namespace, "app", req.App, "rule_id", req.RuleID, "reason", req.Reason) {
		return
	}
	if err := s.api.Dismiss(r.Context(), sessionOf(r).token, req); err != nil {
		s.actionFailed(w, r, "dismiss", err)
		return
	}
	s.metrics.actions.WithLabelValues("dismiss", "accepted").Inc()
	s.log.Info("console: finding dismissed", "incident", id, "rule_id", req.RuleID, "user", sessionOf(r).user)
	s.render(w, r, http.StatusAccepted, "done", "Finding dismissed", "fleet", doneData{Incident: id, What: "Dismissal recorded",
		Lines: []string{"Rule " + req.RuleID + " no longer counts towards the verdicts of " + req.App + "."}})
}

func (s *Server) actionFailed(w http.ResponseWriter, r *http.Request, action string, err error) {
	result := "error"
	if st := correlator.StatusOf(err); st >= 400 && st < 500 {
		result = "refused"
	}
	s.metrics.actions.WithLabelValues(action, result).Inc()
	s.log.Warn("console: action not accepted", "action", action, "incident", r.PathValue("id"), "error", err)
	s.failAPI(w, r, err)
}

// certificatesData is a page of the certificates: soonest expiry first.
type certificatesData struct {
	Certs            []correlator.NamespacedCertificate
	Namespace        string
	Total, Page      int
	Pages            int
	PrevURL, NextURL string
}

// certificatesPage lists every certificate the correlator knows (of one
// namespace with ?namespace=), soonest expiry first, a page at a time.
func (s *Server) certificatesPage(w http.ResponseWriter, r *http.Request) {
	ns := strings.TrimSpace(r.FormValue("namespace"))
	var certs []correlator.NamespacedCertificate
	err := s.timed("certificates", func() (err error) {
		certs, err = s.api.Certificates(r.Context(), sessionOf(r).token, ns)
		return err
	})
	if err != nil {
		s.failAPI(w, r, err)
		return
	}
	slices.SortFunc(certs, func(a, b correlator.NamespacedCertificate) int {
		return cmp.Or(a.NotAfter.Compare(b.NotAfter), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Secret, b.Secret), cmp.Compare(a.Serial, b.Serial))
	})
	page, _ := strconv.Atoi(r.FormValue("page"))
	d := certificatesData{Namespace: ns, Total: len(certs), Pages: max((len(certs)+s.pageSize-1)/s.pageSize, 1)}
	d.Page = min(max(page, 1), d.Pages)
	d.Certs = certs[(d.Page-1)*s.pageSize : min(d.Page*s.pageSize, len(certs))]
	link := func(page int) string {
		v := url.Values{"page": {strconv.Itoa(page)}}
		if ns != "" {
			v.Set("namespace", ns)
		}
		return "/certificates?" + v.Encode()
	}
	if d.Page > 1 {
		d.PrevURL = link(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.NextURL = link(d.Page + 1)
	}
	s.render(w, r, http.StatusOK, "certificates", "Certificates", "certificates", d)
}

// pipelineData is the pipeline page: the streams' figures and a page of
// the uploads not joined.
type pipelineData struct {
	Streams *streams.Pipeline
	// Uploads not joined, a page from UploadsAfter on; NextURL is the next
	// page's address when more follow. UploadsError says why they could
	// not be read.
	Uploads      []correlator.UploadJoin
	UploadsAfter string
	UploadsError string
	NextURL      string
}

// pipelinePage shows events per stream, the consumers' lag, the newest
// dead letters (from the streams) and the uploads not joined (from the
// correlator, a page at a time: ?uploads_after=<upload id>).
func (s *Server) pipelinePage(w http.ResponseWriter, r *http.Request) {
	var d pipelineData
	if s.streams != nil {
		pl := s.streams.Pipeline(r.Context())
		d.Streams = &pl
	}
	d.UploadsAfter = r.FormValue("uploads_after")
	if !uploadID(d.UploadsAfter) {
		d.UploadsAfter = ""
	}
	var ups []correlator.UploadJoin
	err := s.timed("pipeline", func() (err error) {
		ups, err = s.api.UploadsNotJoined(r.Context(), sessionOf(r).token, d.UploadsAfter, s.pageSize+1)
		return err
	})
	if err != nil {
		s.log.Warn("console: uploads not joined unreadable", "error", err)
		d.UploadsError = err.Error()
	}
	if len(ups) > s.pageSize {
		ups = ups[:s.pageSize]
		d.NextURL = "/pipeline?" + url.Values{"uploads_after": {ups[len(ups)-1].UploadID}}.Encode()
	}
	d.Uploads = ups
	s.render(w, r, http.StatusOK, "pipeline", "Pipeline", "pipeline", d)
}

// uploadID reports whether id is an upload id as sastingest makes them (40
// lowercase hexadecimal digits); "" is none.
func uploadID(id string) bool {
	if len(id) != 40 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
