package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/stateguard/stateguard/services/sastingest/internal/auth"
	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

// Options configure a Server.
type Options struct {
	Pipeline *ingest.Pipeline
	// Tokens authorise bearer-token writes; nil refuses them.
	Tokens *auth.Tokens
	// Secrets and Replay authorise webhooks; nil refuses them.
	Secrets *auth.Secrets
	Replay  *auth.Replay
	// SpoolDir holds webhook bodies while their signature is checked
	// (default: the system temp dir).
	SpoolDir string
	// MaxBody bounds a request body as sent (/v1/sarif, /v1/events).
	MaxBody int64
	// MaxWebhookBody bounds a webhook body, which is spooled to disk
	// before its signature can be checked (default MaxBody).
	MaxWebhookBody int64
	// MaxGitHubBody bounds a GitHub-style upload request, which is held
	// in memory (default from MaxBody: base64 of gzip).
	MaxGitHubBody int64
	// PublicURL is the base of links in answers; empty: from the request.
	PublicURL string
	Log       *slog.Logger
	Metrics   *Metrics
	Now       func() time.Time
	// MaxConcurrent bounds the uploads read, parsed or stored at once
	// (requests and background GitHub-style uploads); one more request is
	// answered 429 (default 8).
	MaxConcurrent int
	// BodyReadTimeout bounds the time an upload's body may take to arrive
	// (0: no bound).
	BodyReadTimeout time.Duration
	// GitHubRetry is how long a GitHub-style upload is retried in the
	// background while storage is unavailable (default 2 minutes).
	GitHubRetry time.Duration

	// gate, when set by a test, holds background processing until it
	// is closed, so the test can see the pending state.
	gate chan struct{}
}

// Server serves the API.
type Server struct {
	opts   Options
	slots  chan struct{} // one per upload in progress
	github *ingest.Queue // GitHub-style uploads, ingested in the background
}

// New returns a Server.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxWebhookBody <= 0 {
		opts.MaxWebhookBody = opts.MaxBody
	}
	if opts.MaxGitHubBody <= 0 {
		// base64 makes the gzip a third larger; the JSON around it is small.
		opts.MaxGitHubBody = opts.MaxBody/3*4 + 64<<10
	}
	if opts.GitHubRetry <= 0 {
		opts.GitHubRetry = 2 * time.Minute
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 8
	}
	s := &Server{opts: opts, slots: make(chan struct{}, opts.MaxConcurrent)}
	s.github = ingest.NewQueue(opts.Pipeline, ingest.QueueOptions{
		Retry:    opts.GitHubRetry,
		Acquire:  s.acquire,
		Failure:  githubFailure,
		Ingested: func(st *ingest.Status) { opts.Metrics.accepted(st.Summary.BySeverity) },
		Log:      opts.Log,
		Now:      opts.Now,
		Hold:     opts.gate,
	})
	return s
}

// Register adds the API's routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/sarif", s.admit(endpointSARIF, s.postSARIF))
	mux.HandleFunc("GET /v1/sarif/{id}", s.getSARIF)
	// GitHub.com's API lives at the root, GitHub Enterprise Server's under
	// /api/v3: an uploader configured for either finds the endpoint.
	for _, prefix := range []string{"", githubEnterprisePrefix} {
		mux.HandleFunc("POST "+prefix+"/repos/{owner}/{repo}/code-scanning/sarifs", s.admit(endpointGitHub, s.postGitHub))
		mux.HandleFunc("GET "+prefix+"/repos/{owner}/{repo}/code-scanning/sarifs/{id}", s.getGitHub)
	}
	mux.HandleFunc("POST /v1/webhooks/{provider}", s.admit(endpointWebhook, s.postWebhook))
	mux.HandleFunc("POST /v1/events", s.admit(endpointEvents, s.postCloudEvent))
}

// Close stops background processing (GitHub-style uploads) and waits for
// it, at most until ctx ends.
func (s *Server) Close(ctx context.Context) error { return s.github.Close(ctx) }

func (s *Server) baseURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimSuffix(s.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// countingReader counts body bytes and marks read failures of the client
// connection, leaving size-limit errors as they are.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		var mb *http.MaxBytesError
		switch {
		case isDeadline(err):
			err = errBodyTimeout
		case !errors.As(err, &mb):
			// The cause is not wrapped: an io.ErrUnexpectedEOF from the
			// client's connection must not read as truncated JSON.
			err = fmt.Errorf("%w: %v", errReadBody, err) //nolint:errorlint // deliberately not wrapped, see above
		}
	}
	return n, err
}

// sarifMediaType reports whether a Content-Type names a SARIF log.
func sarifMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/sarif+json", "application/json":
		return true
	}
	return false
}

// gzipEncoding reads Content-Encoding: gzip, identity or none.
func gzipEncoding(ce string) (gzipped, ok bool) {
	switch strings.ToLower(strings.TrimSpace(ce)) {
	case "":
		return false, true
	case "identity":
		return false, true
	case "gzip", "x-gzip":
		return true, true
	}
	return false, false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// finish records an upload's outcome and answers a failed one.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, endpoint string, start time.Time, err error) {
	p, oc := problemOf(err)
	s.done(endpoint, start, oc)
	if p.Status >= 500 {
		s.opts.Log.WarnContext(r.Context(), "upload failed", "endpoint", endpoint, "status", p.Status, "error", err)
	} else {
		s.opts.Log.InfoContext(r.Context(), "upload rejected", "endpoint", endpoint, "status", p.Status, "reason", p.Title, "json_path", p.JSONPath)
	}
	writeProblem(w, r, p)
}

func (s *Server) done(endpoint string, start time.Time, oc outcome) {
	s.opts.Metrics.uploads.WithLabelValues(endpoint, string(oc)).Inc()
	s.opts.Metrics.latency.WithLabelValues(endpoint, string(oc)).Observe(time.Since(start).Seconds())
}

// authorize checks the bearer token of r for repository and answers 401 or
// 403 when it fails.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, endpoint string, start time.Time, repository string) bool {
	if s.opts.Tokens == nil {
		s.done(endpoint, start, outcomeUnauth)
		writeProblem(w, r, Problem{Type: ProblemBase + "unauthorized", Status: http.StatusUnauthorized, Detail: "bearer tokens are not configured"})
		return false
	}
	err := s.opts.Tokens.Authorize(auth.BearerToken(r.Header.Get("Authorization")), repository)
	switch {
	case err == nil:
		return true
	case errors.Is(err, auth.ErrForbiddenRepo):
		s.done(endpoint, start, outcomeForbidden)
		writeProblem(w, r, Problem{Type: ProblemBase + "forbidden", Status: http.StatusForbidden, Detail: "the token may not upload for repository " + repository})
	default:
		s.done(endpoint, start, outcomeUnauth)
		writeProblem(w, r, Problem{Type: ProblemBase + "unauthorized", Status: http.StatusUnauthorized, Detail: err.Error()})
	}
	return false
}
