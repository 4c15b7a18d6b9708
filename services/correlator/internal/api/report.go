package api

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/stateguard/stateguard/pkg/runtime/service"
)

// RegisterReport serves GET /v1/report (a read token): h answers it
// (report.Generator.Handler); ReportProblem writes its errors.
func RegisterReport(mux *http.ServeMux, tokens Tokens, h http.Handler) {
	mux.Handle("GET /v1/report", tokens.require(ScopeRead, h))
}

// ReportProblem answers a report request's error as problem+json: 400 for
// bad input, 503 (retry) when the state or the streams cannot be read.
func ReportProblem(log *slog.Logger) func(w http.ResponseWriter, r *http.Request, status int, err error) {
	return func(w http.ResponseWriter, r *http.Request, status int, err error) {
		if status >= 500 {
			log.Error("api: report", "error", err)
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
			writeProblem(w, r, service.Problem{Type: service.ProblemBase + "unavailable", Title: "Report unavailable",
				Status: http.StatusServiceUnavailable, Detail: "the correlator's state or streams could not be read; retry later"})
			return
		}
		writeProblem(w, r, service.Problem{Type: service.ProblemBase + "bad-request", Title: "Bad request", Status: status, Detail: err.Error()})
	}
}
