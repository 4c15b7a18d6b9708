package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/stateguard/stateguard/services/sastingest/internal/auth"
	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

const endpointSARIF = "sarif"

// Accepted is the answer to an accepted upload.
type Accepted struct {
	ID        string `json:"id"`
	StatusURL string `json:"status_url"`
	// Duplicate is true when the same log with the same metadata had
	// been accepted before: nothing new was stored or published.
	Duplicate bool `json:"duplicate,omitempty"`
}

func metadataOf(q url.Values) ingest.Metadata {
	return ingest.Metadata{
		Repository:  q.Get("repository"),
		CommitSHA:   q.Get("commit_sha"),
		Ref:         q.Get("ref"),
		Category:    q.Get("category"),
		App:         q.Get("app"),
		Namespace:   q.Get("namespace"),
		Version:     q.Get("version"),
		Environment: q.Get("environment"),
		Images:      q["image"],
	}
}

// checkRequest answers 415 for a body that is not SARIF in an encoding we
// read, 413 for a declared length over the limit, 400 for bad metadata.
func (s *Server) checkRequest(w http.ResponseWriter, r *http.Request, endpoint string, start time.Time, meta *ingest.Metadata, limit int64) (gzipped, ok bool) {
	if !sarifMediaType(r.Header.Get("Content-Type")) {
		s.done(endpoint, start, outcomeUnsupported)
		writeProblem(w, r, Problem{Type: ProblemBase + "unsupported-media-type", Status: http.StatusUnsupportedMediaType,
			Detail: "Content-Type must be application/sarif+json or application/json"})
		return false, false
	}
	gzipped, ok = gzipEncoding(r.Header.Get("Content-Encoding"))
	if !ok {
		s.done(endpoint, start, outcomeUnsupported)
		writeProblem(w, r, Problem{Type: ProblemBase + "unsupported-media-type", Status: http.StatusUnsupportedMediaType,
			Detail: "Content-Encoding must be gzip or identity"})
		return false, false
	}
	if r.ContentLength > limit {
		s.fail(w, r, endpoint, start, &http.MaxBytesError{Limit: limit})
		return false, false
	}
	if meta != nil {
		if err := meta.Validate(); err != nil {
			s.done(endpoint, start, outcomeInvalid)
			writeProblem(w, r, Problem{Type: ProblemBase + "bad-metadata", Title: "Bad upload metadata", Status: http.StatusBadRequest, Detail: err.Error()})
			return false, false
		}
	}
	return gzipped, true
}

// ingest streams body through the pipeline and answers 202 or a problem.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request, endpoint string, start time.Time, meta ingest.Metadata, body io.Reader, gzipped bool) (*ingest.Status, error) {
	m := s.opts.Metrics
	m.inflight.Inc()
	defer m.inflight.Dec()
	cr := &countingReader{r: body}
	st, err := s.opts.Pipeline.Ingest(r.Context(), meta, cr, gzipped)
	m.bytes.WithLabelValues(endpoint).Add(float64(cr.n))
	if err != nil {
		s.fail(w, r, endpoint, start, err)
		return nil, err
	}
	if st.Duplicate {
		s.done(endpoint, start, outcomeDuplicate)
	} else {
		s.done(endpoint, start, outcomeAccepted)
		m.accepted(st.Summary.BySeverity)
	}
	writeJSON(w, http.StatusAccepted, Accepted{ID: st.ID, StatusURL: s.baseURL(r) + "/v1/sarif/" + st.ID, Duplicate: st.Duplicate})
	return st, nil
}

func (s *Server) postSARIF(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	meta := metadataOf(r.URL.Query())
	if !s.authorize(w, r, endpointSARIF, start, meta.Repository) {
		return
	}
	gzipped, ok := s.checkRequest(w, r, endpointSARIF, start, &meta, s.opts.MaxBody)
	if !ok {
		return
	}
	_, _ = s.ingest(w, r, endpointSARIF, start, meta, http.MaxBytesReader(w, r.Body, s.opts.MaxBody), gzipped)
}

func (s *Server) getSARIF(w http.ResponseWriter, r *http.Request) {
	if !s.readable(r) {
		writeProblem(w, r, Problem{Type: ProblemBase + "unauthorized", Status: http.StatusUnauthorized, Detail: "a bearer token is required"})
		return
	}
	id := r.PathValue("id")
	if !ingest.ValidUploadID(id) {
		writeProblem(w, r, badID("an upload id is 40 lowercase hexadecimal digits", id))
		return
	}
	st, err := s.opts.Pipeline.Get(r.Context(), id)
	switch {
	case errors.Is(err, ingest.ErrNotFound):
		writeProblem(w, r, Problem{Type: ProblemBase + "not-found", Status: http.StatusNotFound, Detail: "no upload with this id"})
		return
	case err != nil:
		p, _ := problemOf(err)
		writeProblem(w, r, p)
		return
	}
	if s.opts.Tokens.Authorize(auth.BearerToken(r.Header.Get("Authorization")), st.Summary.Repository) != nil {
		writeProblem(w, r, Problem{Type: ProblemBase + "not-found", Status: http.StatusNotFound, Detail: "no upload with this id"})
		return
	}
	st.Join = ingest.JoinOf(st.Summary)
	writeJSON(w, http.StatusOK, st)
}

// readable reports whether r carries a known bearer token (for any
// repository); the repository is checked once the upload is found.
func (s *Server) readable(r *http.Request) bool {
	if s.opts.Tokens == nil {
		return false
	}
	err := s.opts.Tokens.Authorize(auth.BearerToken(r.Header.Get("Authorization")), "")
	return err == nil || errors.Is(err, auth.ErrForbiddenRepo)
}

// badID answers an identifier in a path that cannot be one, before it
// reaches a key or a subject.
func badID(want, id string) Problem {
	return Problem{Type: ProblemBase + "bad-id", Title: "Bad identifier", Status: http.StatusBadRequest,
		Detail: fmt.Sprintf("%s; got %d bytes", want, len(id))}
}
