package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Processing states of a queued upload (GitHub's processing_status).
const (
	QueuePending  = "pending"
	QueueComplete = "complete"
	QueueFailed   = "failed"
)

// QueuedUpload is the record of a GitHub-style upload, kept in the status
// bucket under gh.<id>.
type QueuedUpload struct {
	ProcessingStatus string    `json:"processing_status"`
	UploadID         string    `json:"upload_id,omitempty"`
	Repository       string    `json:"repository"`
	Meta             Metadata  `json:"meta"`
	Errors           []string  `json:"errors,omitempty"`
	Updated          time.Time `json:"updated"`
}

// QueueOptions configure a Queue.
type QueueOptions struct {
	// Retry is how long an upload is retried while storage is
	// unavailable (default 2 minutes).
	Retry time.Duration
	// Acquire takes one of the slots that bound the uploads in progress,
	// waiting for one; nil: no bound.
	Acquire func(ctx context.Context) (release func(), err error)
	// Failure tells whether an ingest error is worth another attempt
	// (storage unavailable) and the reason recorded when the upload
	// fails; nil: retry on ErrUnavailable, the error's text.
	Failure func(err error) (retry bool, reason string)
	// Ingested is called for each upload stored (not for a duplicate).
	Ingested func(*Status)
	Log      *slog.Logger
	Now      func() time.Time
	// Hold, when set by a test, holds background processing until it is
	// closed, so the test can see the pending state.
	Hold <-chan struct{}
}

// Queue runs GitHub-style uploads: each is held as received and recorded
// pending before it is accepted, then ingested in the background, retried
// while storage is unavailable, and its outcome recorded. A restart
// resumes the uploads still pending.
type Queue struct {
	p    *Pipeline
	opts QueueOptions

	bg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// NewQueue returns a Queue that ingests through p.
func NewQueue(p *Pipeline, opts QueueOptions) *Queue {
	if opts.Retry <= 0 {
		opts.Retry = 2 * time.Minute
	}
	if opts.Acquire == nil {
		opts.Acquire = func(context.Context) (func(), error) { return func() {}, nil }
	}
	if opts.Failure == nil {
		opts.Failure = func(err error) (bool, string) { return errors.Is(err, ErrUnavailable), err.Error() }
	}
	if opts.Ingested == nil {
		opts.Ingested = func(*Status) {}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Queue{p: p, opts: opts, ctx: ctx, cancel: cancel}
}

var queueIDRe = regexp.MustCompile(`^[0-9a-f]{36}$`)

// ValidQueueID reports whether id has the form Accept gives: 36 lowercase
// hex digits.
func ValidQueueID(id string) bool { return queueIDRe.MatchString(id) }

func queueKey(id string) string { return "gh." + id }

// Accept holds an upload (the gzip log as received) and records it
// pending, then ingests it in the background; it returns the upload's id,
// derived from the log and the metadata. The same upload again is
// answered from its record; one that failed is tried again.
func (q *Queue) Accept(ctx context.Context, meta Metadata, gz []byte) (string, error) {
	h := sha256.New()
	h.Write(gz)
	m, _ := json.Marshal(meta)
	h.Write(m)
	id := hex.EncodeToString(h.Sum(nil))[:36]
	key := queueKey(id)

	var rev uint64
	b, r, err := q.p.statuses.Get(ctx, key)
	switch {
	case err == nil:
		var rec QueuedUpload
		if json.Unmarshal(b, &rec) == nil && rec.ProcessingStatus != QueueFailed {
			return id, nil
		}
		rev = r
	case !errors.Is(err, ErrNotFound):
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := q.p.held.Put(ctx, key, gz); err != nil {
		return "", fmt.Errorf("%w: store pending upload: %w", ErrUnavailable, err)
	}
	rec := QueuedUpload{ProcessingStatus: QueuePending, Repository: meta.Repository, Meta: meta, Updated: q.opts.Now().UTC()}
	b, _ = json.Marshal(rec)
	err = q.p.statuses.Swap(ctx, key, b, rev)
	switch {
	case errors.Is(err, ErrChanged):
		return id, nil // a concurrent post of the same upload won
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// The background ingest continues the request's trace.
	q.start(trace.SpanContextFromContext(ctx), key, meta, gz)
	return id, nil
}

// Status returns the record of an upload, ErrNotFound for an id that is
// not known (or a record that cannot be read), or an error wrapping
// ErrUnavailable.
func (q *Queue) Status(ctx context.Context, id string) (*QueuedUpload, error) {
	b, _, err := q.p.statuses.Get(ctx, queueKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var rec QueuedUpload
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%w: record of %s: %w", ErrNotFound, id, err)
	}
	return &rec, nil
}

// Holds reports whether the copy of an upload as received is still held
// (it is removed once the outcome is recorded).
func (q *Queue) Holds(ctx context.Context, id string) (bool, error) {
	_, err := q.p.held.Get(ctx, queueKey(id))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Resume restarts the ingest of uploads that were accepted but not
// finished when the service stopped.
func (q *Queue) Resume(ctx context.Context) error {
	keys, err := q.p.statuses.Keys(ctx, queueKey("*"))
	if err != nil {
		return fmt.Errorf("list pending uploads: %w", err)
	}
	for _, key := range keys {
		b, _, err := q.p.statuses.Get(ctx, key)
		if err != nil {
			continue
		}
		var rec QueuedUpload
		if json.Unmarshal(b, &rec) != nil || rec.ProcessingStatus != QueuePending {
			continue
		}
		gz, err := q.p.held.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("pending upload %s: %w", key, err)
		}
		q.opts.Log.Info("resuming a pending github upload", "key", key)
		q.start(trace.SpanContext{}, key, rec.Meta, gz)
	}
	return nil
}

// Close stops background processing and waits for it, at most until ctx
// ends. Uploads not finished stay pending for Resume.
func (q *Queue) Close(ctx context.Context) error {
	q.cancel()
	done := make(chan struct{})
	go func() { q.bg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("background uploads still running: %w", ctx.Err())
	}
}

func (q *Queue) start(parent trace.SpanContext, key string, meta Metadata, gz []byte) {
	q.bg.Add(1)
	go func() {
		defer q.bg.Done()
		q.process(parent, key, meta, gz)
	}()
}

// process ingests a held upload and records the outcome; shutting down,
// it leaves the upload pending, to be resumed on the next start.
func (q *Queue) process(parent trace.SpanContext, key string, meta Metadata, gz []byte) {
	ctx := q.ctx
	if parent.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, parent)
	}
	if q.opts.Hold != nil {
		select {
		case <-q.opts.Hold:
		case <-ctx.Done():
		}
	}
	rec, ok := q.ingest(ctx, key, meta, gz)
	if !ok {
		return
	}
	q.record(ctx, key, rec)
}

// ingest runs the upload through the pipeline, retrying while storage is
// unavailable for up to Retry; ok is false when shutting down.
func (q *Queue) ingest(ctx context.Context, key string, meta Metadata, gz []byte) (rec QueuedUpload, ok bool) {
	deadline := time.Now().Add(q.opts.Retry)
	rec = QueuedUpload{Repository: meta.Repository, Meta: meta}
	for attempt := 1; ; attempt++ {
		release, err := q.opts.Acquire(ctx)
		if err != nil {
			return rec, false
		}
		st, err := q.p.Ingest(ctx, meta, bytes.NewReader(gz), true)
		release()
		if err == nil {
			rec.ProcessingStatus, rec.UploadID = QueueComplete, st.ID
			if !st.Duplicate {
				q.opts.Ingested(st)
			}
			return rec, true
		}
		if ctx.Err() != nil {
			return rec, false
		}
		retry, reason := q.opts.Failure(err)
		if retry && time.Now().Before(deadline) {
			q.opts.Log.WarnContext(ctx, "github upload: storage unavailable, retrying", "key", key, "attempt", attempt, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second)):
			}
			continue
		}
		rec.ProcessingStatus, rec.Errors = QueueFailed, []string{reason}
		return rec, true
	}
}

// record writes the outcome of an upload and removes its held copy.
func (q *Queue) record(ctx context.Context, key string, rec QueuedUpload) {
	rec.Updated = q.opts.Now().UTC()
	b, _ := json.Marshal(rec)
	for attempt := 1; attempt <= 10; attempt++ {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := q.p.statuses.Put(sctx, key, b)
		if err == nil {
			if err := q.p.held.Delete(sctx, key); err != nil {
				q.opts.Log.WarnContext(sctx, "github upload: removing the pending copy", "key", key, "error", err)
			}
			cancel()
			return
		}
		cancel()
		q.opts.Log.WarnContext(ctx, "github upload: recording status failed", "key", key, "error", err)
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}
