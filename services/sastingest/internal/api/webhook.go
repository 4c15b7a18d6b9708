package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/stateguard/stateguard/services/sastingest/internal/auth"
	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

const endpointWebhook = "webhook"

// MetadataProperty is the member of a SARIF log's own property bag
// (the log's top-level "properties") that carries a webhook upload's
// metadata, with the names of /v1/sarif's query parameters:
//
//	"properties": {"stateguard.io/upload": {"repository": "acme/shop", "commit_sha": "…",
//	    "ref": "refs/heads/main", "app": "shop", "namespace": "prod", "version": "1.4.2",
//	    "images": ["registry.example/shop@sha256:…"]}}
//
// A webhook's signature covers its body only, so only the body may say
// what the upload is about.
const MetadataProperty = "stateguard.io/upload"

// maxMetadataBytes bounds the metadata property's JSON text.
const maxMetadataBytes = 64 << 10

var (
	providerRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	deliveryRe = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)
)

// postWebhook takes a SARIF log from a scanner webhook. The body, at most
// MaxWebhookBody bytes, streams through the signature's MAC into a spool
// file; the read stops at the bound, and the spool is removed whatever
// the outcome, before the answer on a bad signature. Only then is the
// log read: its metadata comes from the signed log (signedMetadata),
// never from the unsigned query string, and a delivery id or a signed
// body seen before is refused.
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
	if !providerRe.MatchString(provider) {
		s.done(endpointWebhook, start, outcomeInvalid)
		writeProblem(w, r, badID("a provider is 1 to 64 lowercase letters, digits, '_' or '-'", provider))
		return
	}
	v, err := s.opts.Secrets.Begin(provider, r.Header, s.opts.Now())
	if err != nil {
		unauthorized(err.Error())
		return
	}
	gzipped, ok := s.checkRequest(w, r, endpointWebhook, start, nil, s.opts.MaxWebhookBody)
	if !ok {
		return
	}
	spool, err := os.CreateTemp(s.opts.SpoolDir, "webhook-*")
	if err != nil {
		s.fail(w, r, endpointWebhook, start, err)
		return
	}
	removeSpool := func() {
		_ = spool.Close()
		_ = os.Remove(spool.Name())
	}
	defer removeSpool()
	digest := sha256.New()
	cr := &countingReader{r: http.MaxBytesReader(w, r.Body, s.opts.MaxWebhookBody)}
	_, err = io.Copy(io.MultiWriter(spool, v, digest), cr)
	s.opts.Metrics.bytes.WithLabelValues(endpointWebhook).Add(float64(cr.n))
	if err != nil {
		removeSpool()
		s.fail(w, r, endpointWebhook, start, err)
		return
	}
	d, err := v.Verify()
	if err != nil {
		removeSpool()
		unauthorized(err.Error())
		return
	}
	if !deliveryRe.MatchString(d.ID) {
		s.done(endpointWebhook, start, outcomeInvalid)
		writeProblem(w, r, Problem{Type: ProblemBase + "bad-request", Status: http.StatusBadRequest,
			Detail: "a delivery id (X-GitHub-Delivery or webhook-id) of 1 to 200 printable characters is required"})
		return
	}
	meta, err := signedMetadata(spool, gzipped, r.URL.Query())
	if err != nil {
		var bm *badMetadataError
		if errors.As(err, &bm) {
			s.done(endpointWebhook, start, outcomeInvalid)
			writeProblem(w, r, Problem{Type: ProblemBase + "bad-metadata", Title: "Bad upload metadata", Status: http.StatusBadRequest, Detail: bm.Error()})
			return
		}
		s.fail(w, r, endpointWebhook, start, err)
		return
	}
	sum := digest.Sum(nil)
	if err := s.opts.Replay.Claim(r.Context(), provider, d.ID, sum); err != nil {
		if errors.Is(err, auth.ErrReplayed) {
			s.done(endpointWebhook, start, outcomeReplayed)
			writeProblem(w, r, Problem{Type: ProblemBase + "replayed", Status: http.StatusConflict,
				Detail: "this delivery id, or this signed body under another delivery id, was seen before"})
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
			if rerr := s.opts.Replay.Release(ctx, provider, d.ID, sum); rerr != nil {
				s.opts.Log.WarnContext(ctx, "webhook: forgetting a failed delivery", "provider", provider, "error", rerr)
			}
		}
	}
}

// badMetadataError is webhook metadata that is missing, invalid or not
// signed.
type badMetadataError struct{ reason string }

func (e *badMetadataError) Error() string { return e.reason }

// signedMetadata reads a webhook upload's metadata from the signed log
// in spool (its MetadataProperty) and checks the query string against it:
// a query parameter may repeat a signed value, and any other value is
// refused, so an unsigned query can never change what an upload is
// joined to (issue #18, finding 3: a captured clean log re-sent with
// another version in the query marked that version clean).
func signedMetadata(spool io.ReadSeeker, gzipped bool, q url.Values) (ingest.Metadata, error) {
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return ingest.Metadata{}, fmt.Errorf("spool: %w", err)
	}
	var r io.Reader = spool
	if gzipped {
		zr, err := gzip.NewReader(spool)
		if err != nil {
			return ingest.Metadata{}, &ingest.GzipError{Reason: err.Error()}
		}
		defer zr.Close()
		r = zr
	}
	raw, err := sarif.LogProperty(r, MetadataProperty, maxMetadataBytes)
	if err != nil {
		var serr *sarif.Error
		if !errors.As(err, &serr) && gzipped {
			return ingest.Metadata{}, &ingest.GzipError{Reason: err.Error()}
		}
		return ingest.Metadata{}, err
	}
	if raw == nil {
		return ingest.Metadata{}, &badMetadataError{"the signed log has no properties." + `"` + MetadataProperty + `"` +
			": a webhook's metadata must be inside the signed body (query parameters are not signed)"}
	}
	var meta ingest.Metadata
	if err := json.Unmarshal(raw, &meta); err != nil {
		return ingest.Metadata{}, &badMetadataError{"properties." + `"` + MetadataProperty + `"` + " is not an object of strings: " + err.Error()}
	}
	if err := queryMatchesSigned(meta, q); err != nil {
		return ingest.Metadata{}, err
	}
	if err := meta.Validate(); err != nil {
		return ingest.Metadata{}, &badMetadataError{err.Error()}
	}
	return meta, nil
}

// queryMatchesSigned refuses a query parameter whose value differs from
// the signed metadata's.
func queryMatchesSigned(signed ingest.Metadata, q url.Values) error {
	fromQuery := metadataOf(q)
	fields := []struct{ name, query, signed string }{
		{"repository", fromQuery.Repository, signed.Repository},
		{"commit_sha", fromQuery.CommitSHA, signed.CommitSHA},
		{"ref", fromQuery.Ref, signed.Ref},
		{"category", fromQuery.Category, signed.Category},
		{"app", fromQuery.App, signed.App},
		{"namespace", fromQuery.Namespace, signed.Namespace},
		{"version", fromQuery.Version, signed.Version},
		{"environment", fromQuery.Environment, signed.Environment},
	}
	for _, f := range fields {
		if q.Has(f.name) && f.query != f.signed {
			return &badMetadataError{fmt.Sprintf("query parameter %s differs from the signed log's: the query is not signed; "+
				"put the metadata in the log's properties.%q only", f.name, MetadataProperty)}
		}
	}
	if q.Has("image") && !slices.Equal(sortedCopy(fromQuery.Images), sortedCopy(signed.Images)) {
		return &badMetadataError{fmt.Sprintf("query parameter image differs from the signed log's: the query is not signed; "+
			"put the metadata in the log's properties.%q only", MetadataProperty)}
	}
	return nil
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
