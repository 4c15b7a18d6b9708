package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

const endpointGitHub = "github"

const githubEnterprisePrefix = "/api/v3"

// githubBase is the API base the request came through.
func (s *Server) githubBase(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, githubEnterprisePrefix+"/") {
		return s.baseURL(r) + githubEnterprisePrefix
	}
	return s.baseURL(r)
}

// githubUpload is the body GitHub's "Upload an analysis as SARIF data"
// endpoint takes.
type githubUpload struct {
	CommitSHA   string `json:"commit_sha"`
	Ref         string `json:"ref"`
	SARIF       string `json:"sarif"`
	CheckoutURI string `json:"checkout_uri"`
	StartedAt   string `json:"started_at"`
	ToolName    string `json:"tool_name"`
	Validate    bool   `json:"validate"`
}

var (
	commitRe = regexp.MustCompile(`^[0-9a-fA-F]{40}$|^[0-9a-fA-F]{64}$`)
	refRe    = regexp.MustCompile(`^refs/(heads|tags|pull)/.+$`)
)

func (s *Server) postGitHub(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	if !s.authorize(w, r, endpointGitHub, start, repo) {
		return
	}
	limit := s.opts.MaxGitHubBody
	if r.ContentLength > limit {
		s.fail(w, r, endpointGitHub, start, &http.MaxBytesError{Limit: limit})
		return
	}
	cr := &countingReader{r: http.MaxBytesReader(w, r.Body, limit)}
	var up githubUpload
	err := json.NewDecoder(cr).Decode(&up)
	s.opts.Metrics.bytes.WithLabelValues(endpointGitHub).Add(float64(cr.n))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) || errors.Is(err, errBodyTimeout) {
			s.fail(w, r, endpointGitHub, start, err)
			return
		}
		s.badGitHub(w, r, start, "the body is not a JSON upload request: "+err.Error())
		return
	}
	switch {
	case !commitRe.MatchString(up.CommitSHA):
		s.badGitHub(w, r, start, "commit_sha must be a 40 or 64 character hex SHA")
		return
	case !refRe.MatchString(up.Ref):
		s.badGitHub(w, r, start, "ref must be refs/heads/<branch>, refs/tags/<tag> or refs/pull/<n>/merge|head")
		return
	case up.SARIF == "":
		s.badGitHub(w, r, start, "sarif is required: base64 of the gzip-compressed SARIF log")
		return
	}
	gz, err := base64.StdEncoding.DecodeString(strings.TrimSpace(up.SARIF))
	up.SARIF = ""
	if err != nil {
		s.badGitHub(w, r, start, "sarif is not base64: "+err.Error())
		return
	}
	if len(gz) < 2 || gz[0] != 0x1f || gz[1] != 0x8b {
		s.badGitHub(w, r, start, "sarif must be gzip-compressed before base64 encoding")
		return
	}
	meta := ingest.Metadata{Repository: repo, CommitSHA: up.CommitSHA, Ref: up.Ref, Category: up.ToolName}
	// GitHub's body has no place for stateguard's join keys; an uploader
	// adds them as the query parameters of /v1/sarif (app, namespace,
	// version, image, category, environment), or leaves them out.
	q := metadataOf(r.URL.Query())
	meta.App, meta.Namespace, meta.Version, meta.Environment, meta.Images = q.App, q.Namespace, q.Version, q.Environment, q.Images
	if q.Category != "" {
		meta.Category = q.Category
	}
	if err := meta.Validate(); err != nil {
		s.badGitHub(w, r, start, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	id, err := s.github.Accept(ctx, meta, gz)
	if err != nil {
		s.fail(w, r, endpointGitHub, start, err)
		return
	}
	s.done(endpointGitHub, start, outcomeAccepted)
	writeJSON(w, http.StatusAccepted, map[string]string{
		"id":  id,
		"url": s.githubBase(r) + "/repos/" + repo + "/code-scanning/sarifs/" + id,
	})
}

// Resume restarts the ingest of GitHub-style uploads that were accepted
// but not finished when the service stopped.
func (s *Server) Resume(ctx context.Context) error { return s.github.Resume(ctx) }

func (s *Server) badGitHub(w http.ResponseWriter, r *http.Request, start time.Time, detail string) {
	s.done(endpointGitHub, start, outcomeInvalid)
	writeProblem(w, r, Problem{Type: ProblemBase + "bad-request", Status: http.StatusBadRequest, Detail: detail})
}

// githubFailure tells the queue whether an ingest error is worth another
// attempt (storage unavailable: 503) and the reason GitHub's status shows.
func githubFailure(err error) (retry bool, reason string) {
	p, _ := problemOf(err)
	reason = p.Title
	if p.Detail != "" {
		reason += ": " + p.Detail
	}
	if p.JSONPath != "" {
		reason += " (at " + p.JSONPath + ")"
	}
	return p.Status == http.StatusServiceUnavailable, reason
}

// getGitHub answers like GitHub's "Get information about a SARIF upload".
func (s *Server) getGitHub(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	if !s.authorize(w, r, endpointGitHub+"_status", time.Now(), repo) {
		return
	}
	id := r.PathValue("id")
	if !ingest.ValidQueueID(id) {
		writeProblem(w, r, badID("a SARIF upload id is 36 lowercase hexadecimal digits", id))
		return
	}
	rec, err := s.github.Status(r.Context(), id)
	switch {
	case errors.Is(err, ingest.ErrNotFound), err == nil && rec.Repository != repo:
		writeProblem(w, r, Problem{Type: ProblemBase + "not-found", Status: http.StatusNotFound, Detail: "no SARIF upload with this id"})
		return
	case err != nil:
		p, _ := problemOf(err)
		writeProblem(w, r, p)
		return
	}
	out := map[string]any{"processing_status": rec.ProcessingStatus, "analyses_url": nil, "errors": nil}
	if len(rec.Errors) > 0 {
		out["errors"] = rec.Errors
	}
	if rec.UploadID != "" {
		out["upload_id"] = rec.UploadID
		out["status_url"] = s.baseURL(r) + "/v1/sarif/" + rec.UploadID
	}
	writeJSON(w, http.StatusOK, out)
}
