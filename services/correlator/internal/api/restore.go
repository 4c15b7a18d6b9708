package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// RestoreRequest is the body of POST /v1/restores: restore a claim in
// place from a snapshot, or from the restore point of an incident.
type RestoreRequest struct {
	// IncidentID, when set, is the incident the restore answers; without
	// a snapshot, its restore point is restored.
	IncidentID string `json:"incident_id,omitempty"`
	// PVC is the claim to restore; empty is the snapshot's claim (or the
	// incident's only one).
	PVC string `json:"pvc,omitempty"`
	// Snapshot is the VolumeSnapshot to restore, in the namespace.
	Snapshot string `json:"snapshot,omitempty"`
	// Namespace is required without an incident.
	Namespace string `json:"namespace,omitempty"`
	Reason    string `json:"reason"`
}

// RestoreAccepted answers POST /v1/restores: the restore.requested event
// published, and the Restore the snapshotter creates for it.
type RestoreAccepted struct {
	// Restore is the name of the Restore (stateguard.io/v1alpha1) in the
	// namespace: follow it with kubectl or the restore.* events.
	Restore string `json:"restore"`
	EventID string `json:"event_id"`
	events.RestoreRequested
}

// restoreRequestID is the id of a restore request: the same request
// (namespace, incident, claim, snapshot, reason, actor, and the client's
// Idempotency-Key header) has the same id, so a retry publishes one event
// and creates one Restore. Another reason, or another Idempotency-Key,
// asks again.
func restoreRequestID(req events.RestoreRequested, key string) string {
	h := sha256.New()
	for _, p := range []string{req.Namespace, req.IncidentID, req.PVC, req.Snapshot, req.Reason, req.Actor, key} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "rr-" + hex.EncodeToString(h.Sum(nil))[:24]
}

// restoreTarget decides what a restore request restores: the snapshot it
// names, else the incident's restore point for the claim (the only one when
// no claim is named). It returns an error for the caller (a 400 or a 409).
func restoreTarget(req RestoreRequest, inc *Incident) (namespace, pvc, snapshot string, status int, err error) {
	namespace, pvc, snapshot = req.Namespace, req.PVC, req.Snapshot
	if inc == nil {
		if namespace == "" || snapshot == "" {
			return "", "", "", http.StatusBadRequest, &invalidError{param: "snapshot", reason: "without incident_id, namespace and snapshot are required"}
		}
		return namespace, pvc, snapshot, 0, nil
	}
	if namespace != "" && namespace != inc.Namespace {
		return "", "", "", http.StatusBadRequest, &invalidError{param: "namespace", reason: fmt.Sprintf("%q is not the incident's namespace %s", namespace, inc.Namespace)}
	}
	namespace = inc.Namespace
	if snapshot != "" {
		// The operator's choice, even a snapshot the correlator thinks
		// tainted: the incident then stays open.
		return namespace, pvc, snapshot, 0, nil
	}
	var points []model.SnapshotView
	for _, p := range inc.RestorePoints {
		if pvc == "" || p.PVC == pvc {
			points = append(points, p)
		}
	}
	switch len(points) {
	case 0:
		what := "no clean restore point"
		if pvc != "" {
			what += " for claim " + pvc
		}
		return "", "", "", http.StatusConflict, fmt.Errorf("incident %s has %s: name a snapshot", inc.ID, what)
	case 1:
		return namespace, points[0].PVC, points[0].Name, 0, nil
	}
	var claims []string
	for _, p := range points {
		claims = append(claims, p.PVC)
	}
	slices.Sort(claims)
	return "", "", "", http.StatusBadRequest, &invalidError{param: "pvc", reason: fmt.Sprintf("incident %s has restore points for several claims (%s): name one", inc.ID, strings.Join(claims, ", "))}
}

// requestRestore answers POST /v1/restores: 202 with the published
// restore.requested event and the name of its Restore; 404 for an unknown
// incident; 409 when the incident has no restore point; 400 on bad input.
func (s *Server) requestRestore(w http.ResponseWriter, r *http.Request) {
	var req RestoreRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := checkRestore(req); err != nil {
		invalid(w, r, err)
		return
	}
	var inc *Incident
	if req.IncidentID != "" {
		found, _, ok := s.findIncident(w, r, req.IncidentID)
		if !ok {
			return
		}
		inc = &found
	}
	ns, pvc, snapshot, status, err := restoreTarget(req, inc)
	if err != nil {
		if status == http.StatusConflict {
			writeProblem(w, r, service.Problem{Type: service.ProblemBase + "conflict", Title: "No restore point", Status: status, Detail: err.Error()})
			return
		}
		invalid(w, r, err)
		return
	}
	p, _ := PrincipalFrom(r.Context())
	ev := events.RestoreRequested{Namespace: ns, PVC: pvc, IncidentID: req.IncidentID, Snapshot: snapshot,
		Actor: p.Name, Reason: strings.TrimSpace(req.Reason), RequestedAt: s.now().UTC()}
	ev.RequestID = restoreRequestID(ev, r.Header.Get("Idempotency-Key"))
	out := RestoreAccepted{Restore: events.RestoreName(ev.RequestID), EventID: "restore-requested-" + ev.RequestID, RestoreRequested: ev}
	if !s.publish(w, r, events.TypeRestoreRequested, out.EventID, ev) {
		return
	}
	s.log.Info("api: restore requested", "namespace", ns, "pvc", pvc, "volume_snapshot", snapshot, "incident", req.IncidentID,
		"actor", p.Name, "request_id", ev.RequestID, "restore", out.Restore)
	writeJSON(w, http.StatusAccepted, out)
}

// checkRestore checks the identifiers of a restore request and its reason.
func checkRestore(req RestoreRequest) error {
	if req.Namespace != "" {
		if err := checkNamespace(req.Namespace); err != nil {
			return err
		}
	}
	for param, v := range map[string]string{"incident_id": req.IncidentID, "pvc": req.PVC, "snapshot": req.Snapshot} {
		if v == "" {
			continue
		}
		if err := checkObjectName(param, v); err != nil {
			return err
		}
	}
	return checkReason(req.Reason)
}
