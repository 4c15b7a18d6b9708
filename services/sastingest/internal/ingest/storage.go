package ingest

import (
	"context"
	"errors"
	"io"
)

// The pipeline and the queue keep their data behind these small
// interfaces, owned here by the code that uses them. jetstream.go holds
// the implementations on JetStream buckets; it is the only file of the
// package that speaks nats.go.

// ErrNotFound is returned by the stores for a key that holds nothing (and
// by Pipeline.Get and Queue.Status for an id that is not known).
var ErrNotFound = errors.New("not found")

// ErrChanged is returned by Statuses.Swap when the record changed (or was
// created) since the revision it was given.
var ErrChanged = errors.New("changed meanwhile")

// Logs stores the original logs, gzip-compressed, by upload id.
type Logs interface {
	// Put stores the whole of r under name and returns the number of
	// bytes stored. A log with that name is replaced.
	Put(ctx context.Context, name, description string, r io.Reader) (stored uint64, err error)
}

// Baselines keeps the fingerprints of the last upload of each (repository,
// category, ref) key: sorted, 8 bytes big-endian each.
type Baselines interface {
	// Open returns the stored fingerprints of key and their size in
	// bytes, or ErrNotFound when the key has no baseline yet.
	Open(ctx context.Context, key string) (r io.ReadCloser, size uint64, err error)
	// Save replaces the baseline of key with the whole of r.
	Save(ctx context.Context, key string, r io.Reader) error
}

// Statuses keeps small JSON records: upload.<id> for stored uploads,
// gh.<id> for GitHub-style uploads in the queue.
type Statuses interface {
	// Get returns the record of key and its revision, or ErrNotFound
	// (also for a key the store cannot hold).
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
	// Put writes the record of key, whatever was there.
	Put(ctx context.Context, key string, value []byte) error
	// Swap writes the record of key if its revision is still revision
	// (0: key holds nothing yet), or returns ErrChanged.
	Swap(ctx context.Context, key string, value []byte, revision uint64) error
	// Keys lists the keys matching filter (a subject filter such as
	// gh.*); none is an empty list.
	Keys(ctx context.Context, filter string) ([]string, error)
}

// Held keeps GitHub-style uploads, as received, from their 202 until
// their ingest is done, so a restart can finish them.
type Held interface {
	Put(ctx context.Context, key string, body []byte) error
	// Get returns the body held under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete removes key; a key that holds nothing is not an error.
	Delete(ctx context.Context, key string) error
}
