package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
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

// stores are the pipeline's and the queue's storage on JetStream.
type stores struct {
	logs      Logs
	baselines Baselines
	statuses  Statuses
	held      Held
}

// openStores creates (or opens) the buckets.
func openStores(ctx context.Context, client *events.Client, replicas int) (stores, error) {
	js := client.JetStream()
	logs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: LogsBucket, Description: "original SARIF logs, gzip, by upload id", Replicas: replicas, Compression: false,
	})
	if err != nil {
		return stores{}, fmt.Errorf("object store %s: %w", LogsBucket, err)
	}
	baselines, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: BaselinesBucket, Description: "fingerprints of the last upload per repository, category and ref", Replicas: replicas,
	})
	if err != nil {
		return stores{}, fmt.Errorf("object store %s: %w", BaselinesBucket, err)
	}
	status, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: StatusBucket, Description: "status and summary of each upload", Replicas: replicas, History: 1,
	})
	if err != nil {
		return stores{}, fmt.Errorf("kv %s: %w", StatusBucket, err)
	}
	pending, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: PendingBucket, Description: "GitHub-style uploads accepted and not yet ingested", Replicas: replicas,
	})
	if err != nil {
		return stores{}, fmt.Errorf("object store %s: %w", PendingBucket, err)
	}
	return stores{
		logs:      jsLogs{os: logs, conn: client.Conn()},
		baselines: jsBaselines{os: baselines},
		statuses:  jsStatuses{kv: status},
		held:      jsHeld{os: pending},
	}, nil
}

// connected fails fast when the NATS connection is down.
func connected(client *events.Client) error {
	if st := client.Conn().Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: nats connection %s", ErrUnavailable, st)
	}
	return nil
}

// payloadLimit is the server's max_payload less room for the headers;
// <= 0 when the limit is not known.
func payloadLimit(client *events.Client) int64 {
	return client.Conn().MaxPayload() - 16<<10
}

type jsLogs struct {
	os   jetstream.ObjectStore
	conn *nats.Conn
}

// chunkSize is logChunkSize within the server's max_payload, with room for
// the headers; 0 (the library's default) when the limit is not known.
func (l jsLogs) chunkSize() uint32 {
	limit := l.conn.MaxPayload() - 16<<10
	if limit <= 0 {
		return 0
	}
	return uint32(min(logChunkSize, limit))
}

func (l jsLogs) Put(ctx context.Context, name, description string, r io.Reader) (uint64, error) {
	info, err := l.os.Put(ctx, jetstream.ObjectMeta{
		Name:        name,
		Description: description,
		Headers:     nats.Header{"Content-Type": []string{"application/sarif+json"}, "Content-Encoding": []string{"gzip"}},
		// Chunks of up to 512 KiB (the default is 128 KiB): a quarter of
		// the messages, so a quarter of the fsyncs of a sync-always server.
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: l.chunkSize()},
	}, r)
	if err != nil {
		return 0, err
	}
	return info.Size, nil
}

type jsBaselines struct{ os jetstream.ObjectStore }

func (b jsBaselines) Open(ctx context.Context, key string) (io.ReadCloser, uint64, error) {
	res, err := b.os.Get(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	info, err := res.Info()
	if err != nil {
		_ = res.Close()
		return nil, 0, err
	}
	return res, info.Size, nil
}

func (b jsBaselines) Save(ctx context.Context, key string, r io.Reader) error {
	_, err := b.os.Put(ctx, jetstream.ObjectMeta{Name: key}, r)
	return err
}

type jsStatuses struct{ kv jetstream.KeyValue }

func (s jsStatuses) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}

func (s jsStatuses) Put(ctx context.Context, key string, value []byte) error {
	_, err := s.kv.Put(ctx, key, value)
	return err
}

func (s jsStatuses) Swap(ctx context.Context, key string, value []byte, revision uint64) error {
	var err error
	if revision == 0 {
		_, err = s.kv.Create(ctx, key, value)
	} else {
		_, err = s.kv.Update(ctx, key, value, revision)
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%s: %w", key, ErrChanged)
	}
	return err
}

func (s jsStatuses) Keys(ctx context.Context, filter string) ([]string, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, filter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

type jsHeld struct{ os jetstream.ObjectStore }

func (h jsHeld) Put(ctx context.Context, key string, body []byte) error {
	_, err := h.os.PutBytes(ctx, key, body)
	return err
}

func (h jsHeld) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := h.os.GetBytes(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, ErrNotFound
	}
	return b, err
}

func (h jsHeld) Delete(ctx context.Context, key string) error {
	err := h.os.Delete(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	return err
}
