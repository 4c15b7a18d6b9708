package ingest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

// Bucket names.
const (
	LogsBucket      = "SARIF_LOGS"
	BaselinesBucket = "SARIF_BASELINES"
	StatusBucket    = "SARIF_UPLOADS"
	// PendingBucket keeps GitHub-style uploads, as received, from their
	// 202 until their ingest is done, so a restart can finish them.
	PendingBucket = "SARIF_PENDING"
)

// logChunkSize is the chunk size of stored logs, unless the server's
// message limit (1 MB by default) asks for less.
const logChunkSize = 512 << 10

// chunkSize is logChunkSize within the server's max_payload, with room for
// the headers; 0 (the library's default) when the limit is not known.
func (p *Pipeline) chunkSize() uint32 {
	limit := p.client.Conn().MaxPayload() - 16<<10
	if limit <= 0 {
		return 0
	}
	return uint32(min(logChunkSize, limit))
}

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
	client    *events.Client
	logs      jetstream.ObjectStore
	baselines jetstream.ObjectStore
	status    jetstream.KeyValue
	pending   jetstream.ObjectStore
	opts      Options

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
	js := client.JetStream()
	logs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: LogsBucket, Description: "original SARIF logs, gzip, by upload id", Replicas: opts.Replicas, Compression: false,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", LogsBucket, err)
	}
	baselines, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: BaselinesBucket, Description: "fingerprints of the last upload per repository, category and ref", Replicas: opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", BaselinesBucket, err)
	}
	status, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: StatusBucket, Description: "status and summary of each upload", Replicas: opts.Replicas, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", StatusBucket, err)
	}
	pending, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: PendingBucket, Description: "GitHub-style uploads accepted and not yet ingested", Replicas: opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", PendingBucket, err)
	}
	return &Pipeline{client: client, logs: logs, baselines: baselines, status: status, pending: pending, opts: opts, locks: map[string]*keyLock{}}, nil
}

// Pending gives the bucket of accepted, not yet ingested GitHub-style
// uploads.
func (p *Pipeline) Pending() jetstream.ObjectStore { return p.pending }

// KV gives the status bucket to other parts of the service (the GitHub
// endpoint keeps its processing records there).
func (p *Pipeline) KV() jetstream.KeyValue { return p.status }

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
func (p *Pipeline) available() error {
	if st := p.client.Conn().Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: nats connection %s", ErrUnavailable, st)
	}
	return nil
}

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// Get returns the status of an upload, or jetstream.ErrKeyNotFound (also
// for an id that UploadID cannot give, which never reaches NATS).
func (p *Pipeline) Get(ctx context.Context, id string) (*Status, error) {
	if !ValidUploadID(id) {
		return nil, jetstream.ErrKeyNotFound
	}
	e, err := p.status.Get(ctx, "upload."+id)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
			return nil, jetstream.ErrKeyNotFound
		}
		return nil, unavailable("status", err)
	}
	var st Status
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, fmt.Errorf("status %s: %w", id, err)
	}
	return &st, nil
}

// Ingest reads one log from body (gzip when gzipped), stores and publishes
// it. It returns a *sarif.Error for a log that is not SARIF 2.1.0, a
// *TooLargeError past the uncompressed limit, a *GzipError for a broken
// gzip body, an error wrapping ErrUnavailable when storage failed, or the
// body's own read error.
func (p *Pipeline) Ingest(ctx context.Context, meta Metadata, body io.Reader, gzipped bool) (*Status, error) {
	if err := p.available(); err != nil {
		return nil, err
	}
	key := BaselineKey(meta)
	unlock := p.lock(key)
	defer unlock()

	prev, err := p.loadBaseline(ctx, key)
	if err != nil {
		return nil, err
	}

	spool, err := os.CreateTemp(p.opts.SpoolDir, "sarif-*.gz")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer func() {
		_ = spool.Close()
		_ = os.Remove(spool.Name())
	}()

	hash := sha256.New()
	var src io.Reader
	var gzw *gzip.Writer
	var async *asyncWriter
	if gzipped {
		raw := &rawReader{r: io.TeeReader(body, spool)}
		zr, err := gzip.NewReader(raw)
		if err != nil {
			if raw.err != nil {
				return nil, raw.err
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, &GzipError{Reason: "the compressed stream is truncated"}
			}
			return nil, &GzipError{Reason: err.Error()}
		}
		defer zr.Close()
		src = gzipErrReader{r: zr, raw: raw}
	} else {
		src = body
	}
	// Compressing the copy to store and hashing run beside the parser.
	if gzipped {
		async = newAsyncWriter(hash)
	} else {
		gzw, _ = gzip.NewWriterLevel(spool, gzip.BestSpeed)
		async = newAsyncWriter(gzw, hash)
	}
	asyncClosed := false
	defer func() {
		if !asyncClosed {
			_ = async.Close()
		}
	}()
	src = io.TeeReader(&limitReader{r: src, limit: p.opts.MaxUncompressed}, async)

	d := newDelta(prev)
	sum, err := sarif.Parse(src, func(f *sarif.Finding) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.add(f)
		return nil
	}, sarif.WithSpoolDir(p.opts.SpoolDir))
	if err != nil {
		return nil, err
	}
	// Drain what follows the JSON (gzip trailer, white space) so the hash
	// and the stored copy cover the whole body.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return nil, err
	}
	asyncClosed = true
	if err := async.Close(); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if gzw != nil {
		if err := gzw.Close(); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	id := UploadID(hash.Sum(nil), meta)

	// NATS may have gone while the body was read: fail fast then.
	if err := p.available(); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.StoreTimeout)
	defer cancel()
	if st, err := p.Get(sctx, id); err == nil {
		st.Duplicate = true
		return st, nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, err
	}

	size, err := spool.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	info, err := p.logs.Put(sctx, jetstream.ObjectMeta{
		Name:        id,
		Description: "SARIF log of " + meta.Repository,
		Headers:     nats.Header{"Content-Type": []string{"application/sarif+json"}, "Content-Encoding": []string{"gzip"}},
		// Chunks of up to 512 KiB (the default is 128 KiB): a quarter of
		// the messages, so a quarter of the fsyncs of a sync-always server.
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: p.chunkSize()},
	}, spool)
	if err != nil {
		return nil, unavailable("store log", err)
	}
	if info.Size != uint64(size) {
		return nil, unavailable("store log", fmt.Errorf("stored %d of %d bytes", info.Size, size))
	}

	cur := d.finish()
	payload := &events.SARIFUploaded{
		UploadID:             id,
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
		Object:               events.ObjectLocation{Bucket: LogsBucket, Name: id, Size: size},
		ReceivedAt:           p.opts.Now().UTC().Truncate(time.Millisecond),
	}
	if err := fitPayload(payload, p.client.Conn().MaxPayload()-16<<10); err != nil {
		return nil, err
	}
	ev, err := p.client.NewEvent(events.TypeSARIFUploaded, id, payload)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if err := p.client.Publish(sctx, ev); err != nil {
		return nil, unavailable("publish", err)
	}
	if _, err := p.baselines.Put(sctx, jetstream.ObjectMeta{Name: key}, cur); err != nil {
		return nil, unavailable("store baseline", err)
	}
	st := &Status{ID: id, State: StateComplete, Summary: payload, Anomalies: sum.AnomalyList}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if _, err := p.status.Put(sctx, "upload."+id, b); err != nil {
		return nil, unavailable("store status", err)
	}
	p.opts.Log.Info("sarif upload stored", "upload_id", id, "repository", meta.Repository, "results", sum.ResultsTotal,
		"new", d.new, "fixed", d.fixed, "anomalies", sum.Anomalies, "bytes_stored", size)
	return st, nil
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
// from the object into one slice.
func (p *Pipeline) loadBaseline(ctx context.Context, key string) ([]sarif.Fingerprint, error) {
	res, err := p.baselines.Get(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable("load baseline", err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return nil, unavailable("load baseline", err)
	}
	out := make([]sarif.Fingerprint, 0, info.Size/8)
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
