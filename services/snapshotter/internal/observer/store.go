package observer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
)

// DefaultBucket is the KV bucket of the last observation of each PVC.
const DefaultBucket = "snapshotter-observations"

// Store keeps, per PVC, the last workload.observed payload the observer
// decided to publish, in a JetStream KV bucket of its own (key
// <namespace>.<pvc>: a namespace has no dot, so the first dot splits).
type Store struct{ kv jetstream.KeyValue }

// OpenStore creates (or, with a binding client, looks up) the bucket.
func OpenStore(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Store, error) {
	if bucket == "" {
		bucket = DefaultBucket
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "snapshotter: the last workload observation of each protected PVC",
		History:     1,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("kv bucket %s: %w", bucket, err)
	}
	return &Store{kv: kv}, nil
}

// Key is the KV key of a PVC.
func Key(namespace, pvc string) string { return namespace + "." + pvc }

// splitKey is Key's inverse.
func splitKey(k string) (namespace, pvc string, ok bool) {
	return strings.Cut(k, ".")
}

// Load returns every stored observation by key. A value that does not
// decode is left out (and logged by the caller through the returned
// error list): it is replaced at the PVC's next observation.
func (s *Store) Load(ctx context.Context) (map[string]events.WorkloadObserved, []error, error) {
	out := map[string]events.WorkloadObserved{}
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list observations: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var bad []error
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("get observation %s: %w", k, err)
		}
		var o events.WorkloadObserved
		if err := json.Unmarshal(e.Value(), &o); err != nil {
			bad = append(bad, fmt.Errorf("observation %s: %w", k, err))
			continue
		}
		if ns, pvc, ok := splitKey(k); !ok || ns != o.Namespace || pvc != o.PVC {
			bad = append(bad, fmt.Errorf("observation %s names %s/%s", k, o.Namespace, o.PVC))
			continue
		}
		out[k] = o
	}
	return out, bad, nil
}

// Put stores the observation of its PVC.
func (s *Store) Put(ctx context.Context, o events.WorkloadObserved) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	k := Key(o.Namespace, o.PVC)
	if _, err := s.kv.Put(ctx, k, b); err != nil {
		return fmt.Errorf("kv put %s: %w", k, err)
	}
	return nil
}

// Delete forgets a PVC.
func (s *Store) Delete(ctx context.Context, namespace, pvc string) error {
	k := Key(namespace, pvc)
	if err := s.kv.Delete(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("kv delete %s: %w", k, err)
	}
	return nil
}
