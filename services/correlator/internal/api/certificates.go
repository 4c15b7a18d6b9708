package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// Certificate is one line of GET /v1/certificates: a certificate (one
// serial of a TLS Secret) as the correlator knows it from certwatcher's
// certificate.observed and certificate.expiring events, with the days it
// has left now.
type Certificate struct {
	Namespace string `json:"namespace"`
	CertPosture
}

// RotateRequest is the body of POST /v1/certificates/{namespace}/{secret}/rotate.
type RotateRequest struct {
	// Reason says why the operator rotates it; empty records
	// defaultRotateReason.
	Reason string `json:"reason,omitempty"`
}

// Rotation is the answer to a rotate: the certificate.rotation.requested
// event that holds.
type Rotation struct {
	EventID string `json:"event_id"`
	// Published is true once the request is stored in JetStream.
	Published bool `json:"published"`
	// Serial is the serial of the certificate the request rotates.
	Serial string `json:"serial"`
	events.CertificateRotationRequested
}

const defaultRotateReason = "rotation requested by an operator"

// registerCertificates adds the certificate routes: GET /v1/certificates
// (read) and POST /v1/certificates/{namespace}/{secret}/rotate (operator).
func (s *Server) registerCertificates(read, write func(string, http.HandlerFunc)) {
	read("GET /v1/certificates", s.certificates)
	write("POST /v1/certificates/{namespace}/{secret}/rotate", validated(s.rotate))
}

// certificates answers GET /v1/certificates[?namespace=ns]: every
// certificate the correlator knows, sorted by namespace and Secret.
func (s *Server) certificates(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace")
	if ns != "" {
		if err := checkNamespace(ns); err != nil {
			invalid(w, r, err)
			return
		}
	}
	views, err := s.views(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now()
	out := []Certificate{}
	for _, v := range views {
		if ns != "" && v.Namespace != ns {
			continue
		}
		for _, cv := range v.Certificates {
			out = append(out, Certificate{Namespace: v.Namespace, CertPosture: CertPosture{CertView: cv, DaysLeftNow: cv.NotAfter.Sub(now).Hours() / 24}})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// rotateEventID is the id of an operator's rotation of one certificate
// (a Secret at one serial): a retried request is stored once, and once
// the Secret holds a new certificate a new request is a new rotation.
func rotateEventID(ns, secret, serial string) string {
	h := sha256.New()
	for _, p := range []string{ns, secret, serial} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "rotate-operator-" + hex.EncodeToString(h.Sum(nil))[:24]
}

// currentCert is the certificate a Secret holds now as far as the
// correlator knows: the serial observed last that was not rotated away.
func currentCert(certs []model.CertView, secret string) (model.CertView, bool) {
	var cur model.CertView
	found := false
	for _, cv := range certs {
		if cv.Secret != secret || cv.Rotated {
			continue
		}
		if !found || cv.ObservedAt.After(cur.ObservedAt) {
			cur, found = cv, true
		}
	}
	return cur, found
}

// rotate answers POST /v1/certificates/{namespace}/{secret}/rotate: 202
// with the published certificate.rotation.requested (the operator token's
// name as actor) for the certificate the Secret holds now; 404 when the
// correlator knows no current certificate in that Secret; 400 on bad
// input. A retry carries the same id (rotateEventID): JetStream stores it
// once within its de-duplication window, and certwatcher carries out a
// request id once whenever it comes again.
func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	var req RotateRequest
	if r.ContentLength != 0 && !s.decode(w, r, &req) {
		return
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		reason = defaultRotateReason
	} else if err := checkReason(reason); err != nil {
		invalid(w, r, err)
		return
	}
	ns, secret := r.PathValue("namespace"), r.PathValue("secret")
	st, ok, err := s.store.State(r.Context(), ns)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var cur model.CertView
	if ok {
		cur, ok = currentCert(model.Derive(s.store.Rules(), st).Certificates, secret)
	}
	if !ok {
		notFound(w, r, fmt.Sprintf("no current certificate known in Secret %s/%s (certwatcher reports the certificates it finds)", ns, secret))
		return
	}
	p, _ := PrincipalFrom(r.Context())
	out := Rotation{EventID: rotateEventID(ns, secret, cur.Serial), Published: true, Serial: cur.Serial,
		CertificateRotationRequested: events.CertificateRotationRequested{Namespace: ns, Secret: secret,
			Reason: reason, Actor: p.Name}}
	out.RequestID = out.EventID
	if !s.publish(w, r, events.TypeCertificateRotationRequest, out.EventID, out.CertificateRotationRequested) {
		return
	}
	s.log.Info("api: certificate rotation requested", "namespace", ns, "secret", secret, "serial", cur.Serial, "actor", p.Name, "event_id", out.EventID)
	writeJSON(w, http.StatusAccepted, out)
}
