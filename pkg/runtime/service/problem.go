package service

import (
	"encoding/json"
	"net/http"
)

// Problem is an RFC 9457 problem details object, the body of every error
// answer of a stateguard HTTP API (Content-Type application/problem+json).
type Problem struct {
	// Type is a URI naming the kind of problem (ProblemBase + a slug).
	Type  string `json:"type"`
	Title string `json:"title"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
	// Detail says what was wrong with this request, for a person.
	Detail string `json:"detail,omitempty"`
	// Instance is the request's path unless set.
	Instance string `json:"instance,omitempty"`
	// JSONPath locates the first error in a rejected JSON document (an
	// RFC 9457 extension member; sastingest's SARIF validation sets it).
	JSONPath string `json:"json_path,omitempty"`
}

// ProblemBase prefixes the type URIs of stateguard's problems.
const ProblemBase = "https://stateguard.io/problems/"

// maxInstance bounds the request path echoed in Instance.
const maxInstance = 256

// WriteProblem answers p as application/problem+json; an empty Title is the
// status text, an empty Instance the request's path. Headers a status needs
// (WWW-Authenticate, Retry-After) are the caller's to set before.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
		if len(p.Instance) > maxInstance {
			// A path refused for its length is not echoed in full.
			p.Instance = p.Instance[:maxInstance] + "..."
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
