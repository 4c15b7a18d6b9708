package ingest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

// Bounds of the lists in the event.
const (
	MaxNewFindings = 100
	MaxFindings    = 200
)

// ErrUnavailable wraps failures of NATS, the object store or the KV
// buckets: the upload was not stored and may be retried.
var ErrUnavailable = errors.New("storage unavailable")

// Status is what GET /v1/sarif/{id} answers: the stored summary of an
// accepted upload.
type Status struct {
	ID        string                `json:"id"`
	State     string                `json:"state"`
	Summary   *events.SARIFUploaded `json:"summary"`
	Anomalies []sarif.Anomaly       `json:"anomalies,omitempty"`
	// Join says whether the upload named the application it is joined to
	// (JoinOf); set when the status is read, not stored.
	Join *Join `json:"join,omitempty"`
	// Duplicate is true when the upload had been accepted before and
	// nothing was stored or published again.
	Duplicate bool `json:"-"`
}

// StateComplete is the state of a stored upload.
const StateComplete = "complete"

// Options configure a Pipeline.
type Options struct {
	// MaxUncompressed bounds the inflated log (gzip bombs included).
	MaxUncompressed int64
	// SpoolDir holds the compressed copy of a log while it is parsed
	// (default os.TempDir()).
	SpoolDir string
	// StoreTimeout bounds storing and publishing once the log is parsed.
	StoreTimeout time.Duration
	Log          *slog.Logger
	Now          func() time.Time
	// Replicas of the buckets (1, or 3 in a cluster).
	Replicas int
}

// Pipeline ingests uploads. It is safe for concurrent use; uploads of the
// same (repository, category, ref) are serialised so their deltas chain.
type Pipeline struct {
	client *events.Client
	stores
	opts Options

	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// New creates (or opens) the buckets and returns a Pipeline.
func New(ctx context.Context, client *events.Client, opts Options) (*Pipeline, error) {
	if opts.MaxUncompressed <= 0 {
		opts.MaxUncompressed = 4 << 30
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	st, err := openStores(ctx, client, opts.Replicas)
	if err != nil {
		return nil, err
	}
	return &Pipeline{client: client, stores: st, opts: opts, locks: map[string]*keyLock{}}, nil
}

func (p *Pipeline) lock(key string) func() {
	p.mu.Lock()
	l := p.locks[key]
	if l == nil {
		l = &keyLock{}
		p.locks[key] = l
	}
	l.refs++
	p.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		p.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(p.locks, key)
		}
		p.mu.Unlock()
	}
}

// available fails fast when the NATS connection is down.
func (p *Pipeline) available() error { return connected(p.client) }

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

func statusKey(id string) string { return "upload." + id }

// Get returns the status of an upload, or ErrNotFound (also for an id
// that UploadID cannot give, which never reaches NATS).
func (p *Pipeline) Get(ctx context.Context, id string) (*Status, error) {
	if !ValidUploadID(id) {
		return nil, ErrNotFound
	}
	b, _, err := p.statuses.Get(ctx, statusKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("status", err)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("status %s: %w", id, err)
	}
	return &st, nil
}

// Ingest reads one log from body (gzip when gzipped), stores and publishes
// it. It returns a *sarif.Error for a log that is not SARIF 2.1.0, a
// *TooLargeError past the uncompressed limit, a *GzipError for a broken
// gzip body, an error wrapping ErrUnavailable when storage failed, or the
// body's own read error.
//
// The steps: receive (spool a gzip copy, hash the body) → parse (find the
// delta against the key's baseline, derive the upload id) → store (the
// log, unless the upload is a duplicate) → publish (the one event) →
// record (the next baseline and the status).
func (p *Pipeline) Ingest(ctx context.Context, meta Metadata, body io.Reader, gzipped bool) (*Status, error) {
	if err := p.available(); err != nil {
		return nil, err
	}
	key := BaselineKey(meta)
	defer p.lock(key)()

	prev, err := p.loadBaseline(ctx, key)
	if err != nil {
		return nil, err
	}
	rc, err := p.receive(body, gzipped)
	if err != nil {
		return nil, err
	}
	defer rc.close()
	up, err := p.parse(ctx, rc, prev, meta)
	if err != nil {
		return nil, err
	}

	// NATS may have gone while the body was read: fail fast then.
	if err := p.available(); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.StoreTimeout)
	defer cancel()
	if st, err := p.Get(sctx, up.id); err == nil {
		st.Duplicate = true
		return st, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	size, err := p.store(sctx, rc, up.id, meta)
	if err != nil {
		return nil, err
	}
	baseline := up.d.finish()
	payload := uploaded(meta, up, size, p.opts.Now())
	if err := p.publish(sctx, payload); err != nil {
		return nil, err
	}
	st := &Status{ID: up.id, State: StateComplete, Summary: payload, Anomalies: up.sum.AnomalyList}
	if err := p.record(sctx, key, baseline, st); err != nil {
		return nil, err
	}
	p.opts.Log.Info("sarif upload stored", "upload_id", up.id, "repository", meta.Repository, "results", up.sum.ResultsTotal,
		"new", up.d.new, "fixed", up.d.fixed, "anomalies", up.sum.Anomalies, "bytes_stored", size)
	return st, nil
}

// receipt is an upload being received: src is the uncompressed log as the
// parser reads it, bounded by MaxUncompressed; beside the parser, the body
// as sent is hashed and a gzip copy of it is spooled to disk.
type receipt struct {
	src   io.Reader
	spool *os.File
	hash  hash.Hash
	zr    *gzip.Reader // a gzip body's reader
	gzw   *gzip.Writer // compresses the copy of a plain body
	async *asyncWriter // hashing and compressing run beside the parser
	done  bool         // async closed
}

// receive opens body for the parser: the receive step.
func (p *Pipeline) receive(body io.Reader, gzipped bool) (*receipt, error) {
	spool, err := os.CreateTemp(p.opts.SpoolDir, "sarif-*.gz")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	rc := &receipt{spool: spool, hash: sha256.New()}
	src := body
	if gzipped {
		if rc.zr, src, err = gunzip(io.TeeReader(body, spool)); err != nil {
			rc.close()
			return nil, err
		}
		rc.async = newAsyncWriter(rc.hash)
	} else {
		rc.gzw, _ = gzip.NewWriterLevel(spool, gzip.BestSpeed)
		rc.async = newAsyncWriter(rc.gzw, rc.hash)
	}
	rc.src = io.TeeReader(&limitReader{r: src, limit: p.opts.MaxUncompressed}, rc.async)
	return rc, nil
}

// gunzip opens a gzip body, telling the body's own read errors from a
// broken stream.
func gunzip(body io.Reader) (*gzip.Reader, io.Reader, error) {
	raw := &rawReader{r: body}
	zr, err := gzip.NewReader(raw)
	if err != nil {
		if raw.err != nil {
			return nil, nil, raw.err
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, &GzipError{Reason: "the compressed stream is truncated"}
		}
		return nil, nil, &GzipError{Reason: err.Error()}
	}
	return zr, gzipErrReader{r: zr, raw: raw}, nil
}

// finish drains what follows the JSON (gzip trailer, white space) so the
// hash and the stored copy cover the whole body, completes the copy and
// returns the body's SHA-256.
func (rc *receipt) finish() ([]byte, error) {
	if _, err := io.Copy(io.Discard, rc.src); err != nil {
		return nil, err
	}
	rc.done = true
	if err := rc.async.Close(); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if rc.gzw != nil {
		if err := rc.gzw.Close(); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	return rc.hash.Sum(nil), nil
}

// close stops the work beside the parser and removes the spooled copy.
func (rc *receipt) close() {
	if rc.async != nil && !rc.done {
		_ = rc.async.Close()
	}
	if rc.zr != nil {
		_ = rc.zr.Close()
	}
	_ = rc.spool.Close()
	_ = os.Remove(rc.spool.Name())
}

// parsedUpload is a log read to its end.
type parsedUpload struct {
	id  string
	sum *sarif.Summary
	d   *delta
}

// parse runs the parser over the log, comparing each finding with the
// previous upload's fingerprints, and derives the upload id from the
// body's hash and the metadata: the parse step.
func (p *Pipeline) parse(ctx context.Context, rc *receipt, prev []sarif.Fingerprint, meta Metadata) (*parsedUpload, error) {
	d := newDelta(prev)
	sum, err := sarif.Parse(rc.src, func(f *sarif.Finding) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.add(f)
		return nil
	}, sarif.WithSpoolDir(p.opts.SpoolDir))
	if err != nil {
		return nil, err
	}
	digest, err := rc.finish()
	if err != nil {
		return nil, err
	}
	return &parsedUpload{id: UploadID(digest, meta), sum: sum, d: d}, nil
}

// store puts the spooled gzip copy in the logs bucket and returns its
// size: the store step.
func (p *Pipeline) store(ctx context.Context, rc *receipt, id string, meta Metadata) (int64, error) {
	size, err := rc.spool.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	if _, err := rc.spool.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	stored, err := p.logs.Put(ctx, id, "SARIF log of "+meta.Repository, rc.spool)
	if err != nil {
		return 0, unavailable("store log", err)
	}
	if stored != uint64(size) {
		return 0, unavailable("store log", fmt.Errorf("stored %d of %d bytes", stored, size))
	}
	return size, nil
}

// uploaded is the event's payload of a parsed and stored upload (after
// up.d.finish).
func uploaded(meta Metadata, up *parsedUpload, size int64, now time.Time) *events.SARIFUploaded {
	d, sum := up.d, up.sum
	return &events.SARIFUploaded{
		UploadID:             up.id,
		Repository:           meta.Repository,
		CommitSHA:            meta.CommitSHA,
		Ref:                  meta.Ref,
		Category:             meta.Category,
		App:                  meta.App,
		Namespace:            meta.Namespace,
		Version:              meta.Version,
		Environment:          meta.Environment,
		Images:               nonNil(meta.Images),
		Tools:                nonNilTools(sum.Tools),
		ByTool:               sum.ByTool,
		ResultsTotal:         sum.ResultsTotal,
		BySeverity:           sum.BySeverity,
		ByLevel:              sum.ByLevel,
		New:                  d.new,
		Fixed:                d.fixed,
		Unchanged:            d.unchanged,
		NewFindings:          nonNilFindings(d.newFindings),
		NewFindingsTruncated: d.newTruncated,
		Findings:             d.topFindings(),
		FindingsTruncated:    d.findingsTruncated,
		Anomalies:            sum.Anomalies,
		Object:               events.ObjectLocation{Bucket: LogsBucket, Name: up.id, Size: size},
		ReceivedAt:           now.UTC().Truncate(time.Millisecond),
	}
}

// publish sends the upload's one io.stateguard.sarif.uploaded.v1 event,
// fitted to the server's message limit: the publish step.
func (p *Pipeline) publish(ctx context.Context, payload *events.SARIFUploaded) error {
	if err := fitPayload(payload, payloadLimit(p.client)); err != nil {
		return err
	}
	ev, err := p.client.NewEvent(events.TypeSARIFUploaded, payload.UploadID, payload)
	if err != nil {
		return fmt.Errorf("event: %w", err)
	}
	if err := p.client.Publish(ctx, ev); err != nil {
		return unavailable("publish", err)
	}
	return nil
}

// record saves the upload's fingerprints as the next baseline of its key,
// then its status, which makes it complete: the record step.
func (p *Pipeline) record(ctx context.Context, key string, baseline io.Reader, st *Status) error {
	if err := p.baselines.Save(ctx, key, baseline); err != nil {
		return unavailable("store baseline", err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if err := p.statuses.Put(ctx, statusKey(st.ID), b); err != nil {
		return unavailable("store status", err)
	}
	return nil
}

// fitPayload shortens the finding lists of an event until it fits in
// limit bytes of JSON (NATS's max payload less room for the headers),
// marking them truncated: an event over the limit could never be
// published, and the upload would be answered 503 forever. The counts are
// kept whole; the strings are bounded by the parser. limit <= 0 (not
// known) leaves the payload as it is.
func fitPayload(pl *events.SARIFUploaded, limit int64) error {
	if limit <= 0 {
		return nil
	}
	for {
		b, err := json.Marshal(pl)
		if err != nil {
			return fmt.Errorf("event: %w", err)
		}
		if int64(len(b)) <= limit {
			return nil
		}
		switch {
		case len(pl.Findings) > 0:
			pl.Findings = pl.Findings[:len(pl.Findings)/2]
			pl.FindingsTruncated = true
		case len(pl.NewFindings) > 0:
			pl.NewFindings = pl.NewFindings[:len(pl.NewFindings)/2]
			pl.NewFindingsTruncated = true
		default:
			return fmt.Errorf("event: %d bytes without findings, over the limit of %d", len(b), limit)
		}
	}
}

// loadBaseline reads the previous upload's fingerprints, streaming them
// from the store into one slice.
func (p *Pipeline) loadBaseline(ctx context.Context, key string) ([]sarif.Fingerprint, error) {
	res, size, err := p.baselines.Open(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable("load baseline", err)
	}
	defer res.Close()
	out := make([]sarif.Fingerprint, 0, size/8)
	br := bufio.NewReaderSize(res, 64<<10)
	var b [8]byte
	for {
		if _, err := io.ReadFull(br, b[:]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, unavailable("load baseline", err)
		}
		out = append(out, sarif.Fingerprint(binary.BigEndian.Uint64(b[:])))
	}
	if !slices.IsSorted(out) {
		slices.Sort(out)
		out = slices.Compact(out)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilTools(s []events.Tool) []events.Tool {
	if s == nil {
		return []events.Tool{}
	}
	return s
}

func nonNilFindings(s []events.Finding) []events.Finding {
	if s == nil {
		return []events.Finding{}
	}
	return s
}
