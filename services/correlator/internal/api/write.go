package api

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// ResolveRequest is the body of POST /v1/incidents/{id}/resolve.
type ResolveRequest struct {
	Reason string `json:"reason"`
}

// DismissRequest is the body of POST /v1/findings/dismiss. An empty
// fingerprint dismisses every finding of the rule for the app.
type DismissRequest struct {
	Namespace   string `json:"namespace"`
	App         string `json:"app"`
	RuleID      string `json:"rule_id"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Reason      string `json:"reason"`
}

// Resolution is the answer to a resolve: the incident.resolved event that
// holds (the one just published, or the one recorded before).
type Resolution struct {
	EventID string `json:"event_id"`
	// Published is false when an earlier resolution already holds: the
	// request changed nothing.
	Published bool `json:"published"`
	events.IncidentResolved
	// Note says when the incident will close if it does not at once.
	Note string `json:"note,omitempty"`
}

// Dismissal is the answer to a dismiss: the finding.dismissed event that
// holds.
type Dismissal struct {
	EventID   string `json:"event_id"`
	Published bool   `json:"published"`
	events.FindingDismissed
}

// Bounds of the free-text fields of a write.
const (
	maxReason   = 1024
	maxRuleID   = 255
	maxBodySize = 64 << 10
)

// resolveEventID is the id of the one incident.resolved event of an
// incident: a retried request carries the same id, so JetStream stores it
// once, and a replay holds one resolution per incident.
func resolveEventID(ns, incident string) string {
	return "incident-resolved-" + ns + "-" + incident
}

// dismissEventID is the id of the one finding.dismissed event of a finding
// (or of a whole rule, without a fingerprint) of an app.
func dismissEventID(ns, app, rule, fingerprint string) string {
	h := sha256.New()
	for _, p := range []string{ns, app, rule, fingerprint} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "finding-dismissed-" + ns + "-" + hex.EncodeToString(h.Sum(nil))[:24]
}

// incident answers GET /v1/incidents/{id}.
func (s *Server) incident(w http.ResponseWriter, r *http.Request) {
	inc, _, ok := s.findIncident(w, r, r.PathValue("id"))
	if ok {
		writeJSON(w, http.StatusOK, inc)
	}
}

// findIncident looks an incident up in every namespace; it answers 404 (or
// 503) itself when it returns false.
func (s *Server) findIncident(w http.ResponseWriter, r *http.Request, id string) (Incident, model.AppView, bool) {
	views, err := s.views(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return Incident{}, model.AppView{}, false
	}
	for _, v := range views {
		for _, av := range v.Apps {
			for _, inc := range av.Incidents {
				if inc.ID == id {
					return Incident{Namespace: v.Namespace, IncidentView: inc}, av, true
				}
			}
		}
	}
	notFound(w, r, "no incident "+id)
	return Incident{}, model.AppView{}, false
}

// resolve answers POST /v1/incidents/{id}/resolve: 202 with the published
// incident.resolved event; 200 with the recorded one when the incident was
// resolved before (a retry changes nothing); 409 when a restore closed it;
// 404 for an unknown incident; 400 without a reason.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	var req ResolveRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := checkReason(req.Reason); err != nil {
		invalid(w, r, err)
		return
	}
	inc, av, ok := s.findIncident(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	st, _, err := s.store.State(r.Context(), inc.Namespace)
	if err != nil || st == nil {
		s.fail(w, r, cmp.Or(err, errors.New("namespace "+inc.Namespace+" vanished")))
		return
	}
	if old := st.Resolutions[inc.ID]; old != nil {
		writeJSON(w, http.StatusOK, Resolution{EventID: old.EventID, IncidentResolved: events.IncidentResolved{
			Incident: inc.ID, Namespace: inc.Namespace, App: inc.App, Reason: old.Reason, Actor: old.Actor, ResolvedAt: old.Time}, Note: stillRunning(inc, av)})
		return
	}
	if !inc.Open {
		writeProblem(w, r, service.Problem{Type: service.ProblemBase + "conflict", Title: "Incident already closed",
			Status: http.StatusConflict, Detail: fmt.Sprintf("incident %s is closed: %s", inc.ID, inc.CloseReason)})
		return
	}
	p, _ := PrincipalFrom(r.Context())
	out := Resolution{EventID: resolveEventID(inc.Namespace, inc.ID), Published: true, IncidentResolved: events.IncidentResolved{
		Incident: inc.ID, Namespace: inc.Namespace, App: inc.App, Reason: strings.TrimSpace(req.Reason), Actor: p.Name, ResolvedAt: s.now().UTC()}}
	if !s.publish(w, r, events.TypeIncidentResolved, out.EventID, out.IncidentResolved) {
		return
	}
	out.Note = stillRunning(inc, av)
	s.log.Info("api: incident resolved", "incident", inc.ID, "namespace", inc.Namespace, "actor", p.Name, "event_id", out.EventID)
	writeJSON(w, http.StatusAccepted, out)
}

// stillRunning says why a resolved incident stays open: a version of it
// still runs (the model closes it once none does).
func stillRunning(inc Incident, av model.AppView) string {
	for _, v := range inc.Versions {
		if slices.Contains(av.Running, v) {
			return "vulnerable version " + v + " still runs: the incident closes once it no longer does"
		}
	}
	return ""
}

// dismiss answers POST /v1/findings/dismiss: 202 with the published
// finding.dismissed event; 200 with the recorded one when the same finding
// was dismissed before; 404 when the app is unknown; 400 on bad input.
func (s *Server) dismiss(w http.ResponseWriter, r *http.Request) {
	var req DismissRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := checkDismiss(req); err != nil {
		invalid(w, r, err)
		return
	}
	st, ok, err := s.store.State(r.Context(), req.Namespace)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		notFound(w, r, "no application "+req.App+" in namespace "+req.Namespace)
		return
	}
	if _, found := model.Derive(s.store.Rules(), st).App(req.App); !found {
		notFound(w, r, "no application "+req.App+" in namespace "+req.Namespace)
		return
	}
	for _, d := range st.Dismissals {
		if d.App == req.App && d.RuleID == req.RuleID && d.Fingerprint == req.Fingerprint {
			writeJSON(w, http.StatusOK, Dismissal{EventID: d.EventID, FindingDismissed: events.FindingDismissed{Namespace: req.Namespace,
				App: d.App, RuleID: d.RuleID, Fingerprint: d.Fingerprint, Reason: d.Reason, Actor: d.Actor, DismissedAt: d.Time}})
			return
		}
	}
	p, _ := PrincipalFrom(r.Context())
	out := Dismissal{EventID: dismissEventID(req.Namespace, req.App, req.RuleID, req.Fingerprint), Published: true,
		FindingDismissed: events.FindingDismissed{Namespace: req.Namespace, App: req.App, RuleID: req.RuleID, Fingerprint: req.Fingerprint,
			Reason: strings.TrimSpace(req.Reason), Actor: p.Name, DismissedAt: s.now().UTC()}}
	if !s.publish(w, r, events.TypeFindingDismissed, out.EventID, out.FindingDismissed) {
		return
	}
	s.log.Info("api: finding dismissed", "namespace", req.Namespace, "app", req.App, "rule_id", req.RuleID, "actor", p.Name, "event_id", out.EventID)
	writeJSON(w, http.StatusAccepted, out)
}

// publish stores one decision; on failure it answers 503 (the client may
// retry: the event id is the same).
func (s *Server) publish(w http.ResponseWriter, r *http.Request, typ, id string, payload any) bool {
	if s.pub == nil {
		writeProblem(w, r, service.Problem{Type: service.ProblemBase + "unavailable", Title: "Writes unavailable",
			Status: http.StatusServiceUnavailable, Detail: "this server has no event publisher: writes are off"})
		return false
	}
	ev, err := s.pub.NewEvent(typ, id, payload)
	if err == nil {
		err = s.pub.Publish(r.Context(), ev)
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("publish %s %s: %w", typ, id, err))
		return false
	}
	return true
}

// decode reads a JSON body (at most maxBodySize, no unknown fields) into
// v; it answers 415 or 400 itself when it returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeProblem(w, r, service.Problem{Type: service.ProblemBase + "unsupported-media-type", Title: "Unsupported media type",
				Status: http.StatusUnsupportedMediaType, Detail: "send the body as application/json"})
			return false
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodySize))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty body")
		}
		invalid(w, r, &invalidError{param: "body", reason: clip(err.Error())})
		return false
	}
	return true
}

func invalid(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, r, service.Problem{Type: service.ProblemBase + "invalid-parameter", Title: "Invalid request parameter",
		Status: http.StatusBadRequest, Detail: err.Error()})
}

// checkReason requires a reason: what the operator decided and why, at
// most maxReason characters, no control characters.
func checkReason(reason string) error {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return &invalidError{param: "reason", reason: `required: say why ("not exploited: the endpoint was never exposed")`}
	case utf8.RuneCountInString(reason) > maxReason:
		return &invalidError{param: "reason", reason: fmt.Sprintf("%d characters, at most %d", utf8.RuneCountInString(reason), maxReason)}
	case !utf8.ValidString(reason) || strings.IndexFunc(reason, unicode.IsControl) >= 0:
		return &invalidError{param: "reason", reason: "must be valid UTF-8 without control characters"}
	}
	return nil
}

// checkDismiss checks a dismissal: a valid namespace and app, a rule id,
// an optional fingerprint, and a reason.
func checkDismiss(req DismissRequest) error {
	if err := checkNamespace(req.Namespace); err != nil {
		return err
	}
	if err := checkApp(req.App); err != nil {
		return err
	}
	if err := checkToken("rule_id", req.RuleID, true); err != nil {
		return err
	}
	if err := checkToken("fingerprint", req.Fingerprint, false); err != nil {
		return err
	}
	return checkReason(req.Reason)
}

// checkToken accepts what SARIF names rules and fingerprints with:
// printable characters without spaces, at most maxRuleID.
func checkToken(param, v string, required bool) error {
	switch {
	case v == "" && required:
		return &invalidError{param: param, reason: "required"}
	case len(v) > maxRuleID:
		return &invalidError{param: param, reason: fmt.Sprintf("%q (%d characters): at most %d", clip(v), len(v), maxRuleID)}
	case !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0:
		return &invalidError{param: param, reason: fmt.Sprintf("%q: printable characters without spaces only", clip(v))}
	}
	return nil
}
