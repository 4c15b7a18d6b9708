package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
)

// Record is one message as a stream stored it, decoded.
type Record struct {
	Stream string
	Seq    uint64
	// Stored is the time JetStream stored the message: the order the
	// correlator's consumers saw it in.
	Stored time.Time
	Event  events.Event
}

// Streams are the streams the audit reads: the correlator's inputs, its
// decisions and the operators' actions.
var Streams = []string{events.StreamSARIF, events.StreamSnapshot, events.StreamCertificate, events.StreamDecision}

// Read returns every message the streams hold now, in the order they were
// stored (by time, then stream and sequence). A message that is not a
// CloudEvent is skipped (the consumers dead-letter it too).
func Read(ctx context.Context, js jetstream.JetStream, streams []string) ([]Record, error) {
	var out []Record
	for _, name := range streams {
		recs, err := readStream(ctx, js, name)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	slices.SortStableFunc(out, func(a, b Record) int {
		if c := a.Stored.Compare(b.Stored); c != 0 {
			return c
		}
		if a.Stream != b.Stream {
			return compareStrings(a.Stream, b.Stream)
		}
		return compareUint(a.Seq, b.Seq)
	})
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readStream reads one stream from its first message to the last one it
// held when the read began, with an ordered consumer (no durable state on
// the server).
func readStream(ctx context.Context, js jetstream.JetStream, name string) ([]Record, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	last, left := s.CachedInfo().State.LastSeq, s.CachedInfo().State.Msgs
	if left == 0 {
		return nil, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", name, err)
	}
	var out []Record
	for {
		// Ask for no more than the stream held: the fetch returns as soon
		// as they are there.
		batch, err := c.Fetch(int(min(left, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", name, err)
		}
		n := 0
		done := false
		for m := range batch.Messages() {
			n++
			left--
			meta, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("read stream %s: %w", name, err)
			}
			if ev, err := events.DecodeMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}); err == nil {
				out = append(out, Record{Stream: name, Seq: meta.Sequence.Stream, Stored: meta.Timestamp.UTC(), Event: ev})
			}
			done = done || meta.Sequence.Stream >= last || left == 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("read stream %s: %w", name, err)
		}
		if done {
			return out, nil
		}
		if n == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("read stream %s: nothing delivered before sequence %d", name, last)
		}
	}
}

// Bucket is the Object Store bucket that keeps the correlator's rules
// files by version (rules/<version>) and the review-cycle reports
// (reports/<id>.md, .html).
const Bucket = "stateguard-audit"

// Objects is the Object Store bucket Bucket.
type Objects struct{ os jetstream.ObjectStore }

// OpenObjects opens (or creates) the bucket.
func OpenObjects(ctx context.Context, js jetstream.JetStream, replicas int) (*Objects, error) {
	if replicas < 1 {
		replicas = 1
	}
	os, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: Bucket, Description: "stateguard audit: rules files by version, review-cycle reports",
		Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", Bucket, err)
	}
	return &Objects{os: os}, nil
}

// BindObjects opens the bucket without creating it (a reader's rights);
// ErrNotFound when there is none.
func BindObjects(ctx context.Context, js jetstream.JetStream) (*Objects, error) {
	os, err := js.ObjectStore(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("object store %s: %w", Bucket, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", Bucket, err)
	}
	return &Objects{os: os}, nil
}

// Put stores data under name and returns where.
func (o *Objects) Put(ctx context.Context, name, contentType string, data []byte) (events.ObjectLocation, error) {
	info, err := o.os.Put(ctx, jetstream.ObjectMeta{Name: name, Headers: nats.Header{"Content-Type": []string{contentType}}}, bytes.NewReader(data))
	if err != nil {
		return events.ObjectLocation{}, fmt.Errorf("store %s/%s: %w", Bucket, name, err)
	}
	return events.ObjectLocation{Bucket: Bucket, Name: name, Size: int64(info.Size)}, nil
}

// Get reads the object name; ErrNotFound when there is none.
func (o *Objects) Get(ctx context.Context, name string) ([]byte, error) {
	r, err := o.os.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%s/%s: %w", Bucket, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", Bucket, name, err)
	}
	defer func() { _ = r.Close() }()
	return io.ReadAll(r)
}

// ErrNotFound is returned for an object that is not stored.
var ErrNotFound = errors.New("not found")

// RulesObject is the name of the rules file of a version.
func RulesObject(version string) string { return "rules/" + version }
