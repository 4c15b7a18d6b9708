package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/stateguard/stateguard/services/sastingest/internal/auth"
)

const endpointWebhook = "webhook"

// postWebhook takes a SARIF log from a scanner webhook. The signature is
// checked over the raw bytes as received, before anything is inflated or
// parsed; the body is spooled to disk meanwhile, so its size does not
// matter to memory. A delivery id seen before is refused.
func (s *Server) postWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	provider := r.PathValue("provider")
	unauthorized := func(detail string) {
		s.done(endpointWebhook, start, outcomeUnauth)
		writeProblem(w, r, Problem{Type: ProblemBase + "bad-signature", Status: http.StatusUnauthorized, Detail: detail})
	}
	if s.opts.Secrets == nil || s.opts.Replay == nil {
		unauthorized("webhooks are not configured")
		return
	}
	v, err := s.opts.Secrets.Begin(provider, r.Header, s.opts.Now())
	if err != nil {
		unauthorized(err.Error())
		return
	}
	meta := metadataOf(r.URL.Query())
	gzipped, ok := s.checkRequest(w, r, endpointWebhook, start, &meta)
	if !ok {
		return
	}
	spool, err := os.CreateTemp(s.opts.SpoolDir, "webhook-*")
	if err != nil {
		s.fail(w, r, endpointWebhook, start, err)
		return
	}
	defer func() {
		_ = spool.Close()
		_ = os.Remove(spool.Name())
	}()
	cr := &countingReader{r: http.MaxBytesReader(w, r.Body, s.opts.MaxBody)}
	_, err = io.Copy(io.MultiWriter(spool, v), cr)
	s.opts.Metrics.bytes.WithLabelValues(endpointWebhook).Add(float64(cr.n))
	if err != nil {
		s.fail(w, r, endpointWebhook, start, err)
		return
	}
	d, err := v.Verify()
	if err != nil {
		unauthorized(err.Error())
		return
	}
	if d.ID == "" {
		s.done(endpointWebhook, start, outcomeInvalid)
		writeProblem(w, r, Problem{Type: ProblemBase + "bad-request", Status: http.StatusBadRequest, Detail: "a delivery id (X-GitHub-Delivery or webhook-id) is required"})
		return
	}
	if err := s.opts.Replay.Claim(r.Context(), provider, d.ID); err != nil {
		if errors.Is(err, auth.ErrReplayed) {
			s.done(endpointWebhook, start, outcomeReplayed)
			writeProblem(w, r, Problem{Type: ProblemBase + "replayed", Status: http.StatusConflict, Detail: "this delivery id was seen before"})
			return
		}
		s.fail(w, r, endpointWebhook, start, err)
		return
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		s.fail(w, r, endpointWebhook, start, err)
		return
	}
	if _, err := s.ingest(w, r, endpointWebhook, start, meta, spool, gzipped); err != nil {
		if p, _ := problemOf(err); p.Status >= 500 {
			// Not stored: the sender's retry of this delivery must pass.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
			defer cancel()
			if rerr := s.opts.Replay.Release(ctx, provider, d.ID); rerr != nil {
				s.opts.Log.Warn("webhook: forgetting a failed delivery", "provider", provider, "error", rerr)
			}
		}
	}
}
