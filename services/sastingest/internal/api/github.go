package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

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

// GitHub processing states.
const (
	ghPending  = "pending"
	ghComplete = "complete"
	ghFailed   = "failed"
)

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

// githubRecord is kept in the status bucket under gh.<id>.
type githubRecord struct {
	ProcessingStatus string          `json:"processing_status"`
	UploadID         string          `json:"upload_id,omitempty"`
	Repository       string          `json:"repository"`
	Meta             ingest.Metadata `json:"meta"`
	Errors           []string        `json:"errors,omitempty"`
	Updated          time.Time       `json:"updated"`
}

// validGitHubID reports whether id has the form postGitHub gives: 36
// lowercase hex digits.
func validGitHubID(id string) bool { return githubIDRe.MatchString(id) }

var (
	githubIDRe = regexp.MustCompile(`^[0-9a-f]{36}$`)
	commitRe   = regexp.MustCompile(`^[0-9a-fA-F]{40}$|^[0-9a-fA-F]{64}$`)
	refRe      = regexp.MustCompile(`^refs/(heads|tags|pull)/.+$`)
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
	h := sha256.New()
	h.Write(gz)
	m, _ := json.Marshal(meta)
	h.Write(m)
	id := hex.EncodeToString(h.Sum(nil))[:36]
	key := "gh." + id

	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := s.acceptGitHub(ctx, key, meta, gz); err != nil {
		s.fail(w, r, endpointGitHub, start, err)
		return
	}
	s.done(endpointGitHub, start, outcomeAccepted)
	writeJSON(w, http.StatusAccepted, map[string]string{
		"id":  id,
		"url": s.githubBase(r) + "/repos/" + repo + "/code-scanning/sarifs/" + id,
	})
}

// acceptGitHub stores an upload as received and records it pending before
// it is answered 202, then ingests it in the background. The same upload
// again is answered from its record; one that failed is tried again.
func (s *Server) acceptGitHub(ctx context.Context, key string, meta ingest.Metadata, gz []byte) error {
	kv := s.opts.Pipeline.KV()
	var rev uint64
	e, err := kv.Get(ctx, key)
	switch {
	case err == nil:
		var rec githubRecord
		if json.Unmarshal(e.Value(), &rec) == nil && rec.ProcessingStatus != ghFailed {
			return nil
		}
		rev = e.Revision()
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("%w: %w", ingest.ErrUnavailable, err)
	}
	if _, err := s.opts.Pipeline.Pending().PutBytes(ctx, key, gz); err != nil {
		return fmt.Errorf("%w: store pending upload: %w", ingest.ErrUnavailable, err)
	}
	rec := githubRecord{ProcessingStatus: ghPending, Repository: meta.Repository, Meta: meta, Updated: s.opts.Now().UTC()}
	b, _ := json.Marshal(rec)
	if rev == 0 {
		_, err = kv.Create(ctx, key, b)
	} else {
		_, err = kv.Update(ctx, key, b, rev)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return nil // a concurrent post of the same upload won
	case err != nil:
		return fmt.Errorf("%w: %w", ingest.ErrUnavailable, err)
	}
	// The background ingest continues the request's trace.
	s.startGitHub(trace.SpanContextFromContext(ctx), key, meta, gz)
	return nil
}

func (s *Server) startGitHub(parent trace.SpanContext, key string, meta ingest.Metadata, gz []byte) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.processGitHub(parent, key, meta, gz)
	}()
}

// Resume restarts the ingest of GitHub-style uploads that were accepted
// but not finished when the service stopped.
func (s *Server) Resume(ctx context.Context) error {
	lister, err := s.opts.Pipeline.KV().ListKeysFiltered(ctx, "gh.*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return fmt.Errorf("list pending uploads: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, key := range keys {
		e, err := s.opts.Pipeline.KV().Get(ctx, key)
		if err != nil {
			continue
		}
		var rec githubRecord
		if json.Unmarshal(e.Value(), &rec) != nil || rec.ProcessingStatus != ghPending {
			continue
		}
		gz, err := s.opts.Pipeline.Pending().GetBytes(ctx, key)
		if err != nil {
			return fmt.Errorf("pending upload %s: %w", key, err)
		}
		s.opts.Log.Info("resuming a pending github upload", "key", key)
		s.startGitHub(trace.SpanContext{}, key, rec.Meta, gz)
	}
	return nil
}

func (s *Server) badGitHub(w http.ResponseWriter, r *http.Request, start time.Time, detail string) {
	s.done(endpointGitHub, start, outcomeInvalid)
	writeProblem(w, r, Problem{Type: ProblemBase + "bad-request", Status: http.StatusBadRequest, Detail: detail})
}

// processGitHub ingests an accepted GitHub-style upload in the background,
// retrying while storage is unavailable, and records the outcome.
func (s *Server) processGitHub(parent trace.SpanContext, key string, meta ingest.Metadata, gz []byte) {
	ctx := s.bgCtx
	if parent.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, parent)
	}
	if s.opts.gate != nil {
		select {
		case <-s.opts.gate:
		case <-ctx.Done():
		}
	}
	deadline := time.Now().Add(s.opts.GitHubRetry)
	rec := githubRecord{Repository: meta.Repository, Meta: meta}
	for attempt := 1; ; attempt++ {
		release, err := s.acquire(ctx)
		if err != nil {
			return // shutting down: resumed on the next start
		}
		st, err := s.opts.Pipeline.Ingest(ctx, meta, bytesReader(gz), true)
		release()
		if err == nil {
			rec.ProcessingStatus, rec.UploadID = ghComplete, st.ID
			if !st.Duplicate {
				s.opts.Metrics.accepted(st.Summary.BySeverity)
			}
			break
		}
		if ctx.Err() != nil {
			// Shutting down: the upload stays pending and is resumed
			// on the next start.
			return
		}
		p, _ := problemOf(err)
		if p.Status == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			s.opts.Log.WarnContext(ctx, "github upload: storage unavailable, retrying", "key", key, "attempt", attempt, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second)):
			}
			continue
		}
		rec.ProcessingStatus = ghFailed
		msg := p.Title
		if p.Detail != "" {
			msg += ": " + p.Detail
		}
		if p.JSONPath != "" {
			msg += " (at " + p.JSONPath + ")"
		}
		rec.Errors = []string{msg}
		break
	}
	rec.Updated = s.opts.Now().UTC()
	b, _ := json.Marshal(rec)
	for attempt := 1; attempt <= 10; attempt++ {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := s.opts.Pipeline.KV().Put(sctx, key, b)
		if err == nil {
			if err := s.opts.Pipeline.Pending().Delete(sctx, key); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				s.opts.Log.WarnContext(sctx, "github upload: removing the pending copy", "key", key, "error", err)
			}
			cancel()
			return
		}
		cancel()
		s.opts.Log.WarnContext(ctx, "github upload: recording status failed", "key", key, "error", err)
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}

// getGitHub answers like GitHub's "Get information about a SARIF upload".
func (s *Server) getGitHub(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	if !s.authorize(w, r, endpointGitHub+"_status", time.Now(), repo) {
		return
	}
	id := r.PathValue("id")
	if !validGitHubID(id) {
		writeProblem(w, r, badID("a SARIF upload id is 36 lowercase hexadecimal digits", id))
		return
	}
	e, err := s.opts.Pipeline.KV().Get(r.Context(), "gh."+id)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
			writeProblem(w, r, Problem{Type: ProblemBase + "not-found", Status: http.StatusNotFound, Detail: "no SARIF upload with this id"})
			return
		}
		p, _ := problemOf(fmt.Errorf("%w: %w", ingest.ErrUnavailable, err))
		writeProblem(w, r, p)
		return
	}
	var rec githubRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.Repository != repo {
		writeProblem(w, r, Problem{Type: ProblemBase + "not-found", Status: http.StatusNotFound, Detail: "no SARIF upload with this id"})
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
