package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/sastingest/internal/auth"
	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

// Problem is an RFC 9457 problem details object, the body of every error
// answer (service.Problem: its JSONPath locates the first error in a
// rejected SARIF log).
type Problem = service.Problem

// ProblemBase prefixes the type URIs of sastingest's problems.
const ProblemBase = service.ProblemBase

// RetryAfterSeconds is sent with every 503.
const RetryAfterSeconds = 5

// writeProblem sets the headers a status needs (Retry-After,
// WWW-Authenticate, Connection: close after a body too large) and answers p
// as problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	h := w.Header()
	switch p.Status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		h.Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="sastingest"`)
	case http.StatusRequestEntityTooLarge:
		h.Set("Connection", "close")
	}
	service.WriteProblem(w, r, p)
}

// outcome names a failure for the uploads metric.
type outcome string

const (
	outcomeAccepted    outcome = "accepted"
	outcomeDuplicate   outcome = "duplicate"
	outcomeInvalid     outcome = "invalid"
	outcomeTooLarge    outcome = "too_large"
	outcomeUnsupported outcome = "unsupported_media_type"
	outcomeUnauth      outcome = "unauthorized"
	outcomeForbidden   outcome = "forbidden"
	outcomeReplayed    outcome = "replayed"
	outcomeUnavailable outcome = "unavailable"
	outcomeBusy        outcome = "busy"
	outcomeTimeout     outcome = "timeout"
	outcomeError       outcome = "error"
)

// problemOf maps an ingest failure to a problem and an outcome.
func problemOf(err error) (Problem, outcome) {
	var serr *sarif.Error
	var tl *ingest.TooLargeError
	var mb *http.MaxBytesError
	var gz *ingest.GzipError
	switch {
	case errors.As(err, &serr):
		return Problem{Type: ProblemBase + "not-sarif", Title: "Not a SARIF 2.1.0 log", Status: http.StatusBadRequest,
			Detail: serr.Reason, JSONPath: serr.Path}, outcomeInvalid
	case errors.As(err, &tl):
		return Problem{Type: ProblemBase + "too-large", Title: "SARIF log too large", Status: http.StatusRequestEntityTooLarge,
			Detail: tl.Error()}, outcomeTooLarge
	case errors.As(err, &mb):
		return Problem{Type: ProblemBase + "too-large", Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the body exceeds the limit of %d bytes", mb.Limit)}, outcomeTooLarge
	case errors.As(err, &gz):
		return Problem{Type: ProblemBase + "bad-gzip", Title: "Body is not valid gzip", Status: http.StatusBadRequest,
			Detail: gz.Error()}, outcomeInvalid
	case errors.Is(err, ingest.ErrUnavailable), errors.Is(err, auth.ErrReplayUnavailable):
		return Problem{Type: ProblemBase + "unavailable", Title: "Storage unavailable", Status: http.StatusServiceUnavailable,
			Detail: "the log was not stored; retry later"}, outcomeUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Problem{Type: ProblemBase + "incomplete", Title: "Request incomplete", Status: http.StatusBadRequest,
			Detail: "the request ended before the log was read"}, outcomeInvalid
	case errors.Is(err, errBodyTimeout):
		return Problem{Type: ProblemBase + "body-timeout", Title: "Request body too slow", Status: http.StatusRequestTimeout,
			Detail: err.Error()}, outcomeTimeout
	case errors.Is(err, errReadBody):
		return Problem{Type: ProblemBase + "incomplete", Title: "Request body could not be read", Status: http.StatusBadRequest,
			Detail: err.Error()}, outcomeInvalid
	}
	return Problem{Type: ProblemBase + "internal", Title: "Internal error", Status: http.StatusInternalServerError}, outcomeError
}

var errReadBody = errors.New("reading the request body failed")
