// Package marks remembers facts certwatcher already acted on — expiry
// thresholds reported, rotation requests handled — in a JetStream KV bucket,
// so a restarted certwatcher neither reports nor rotates twice.
package marks

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Store is a KV-backed set of keys with values, with a local cache of the
// keys known to exist.
type Store struct {
	kv    jetstream.KeyValue
	mu    sync.Mutex
	known map[string]bool
}

// Open creates (or updates) the bucket and returns a Store over it.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Store, error) {
	if replicas < 1 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "certwatcher: expiry thresholds reported and rotation requests handled",
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("kv bucket %s: %w", bucket, err)
	}
	return &Store{kv: kv, known: map[string]bool{}}, nil
}

// Has reports whether key was put.
func (s *Store) Has(ctx context.Context, key string) (bool, error) {
	s.mu.Lock()
	ok := s.known[key]
	s.mu.Unlock()
	if ok {
		return true, nil
	}
	_, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kv get %s: %w", key, err)
	}
	s.remember(key)
	return true, nil
}

// Get returns the value of key, or nil when absent.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv get %s: %w", key, err)
	}
	return e.Value(), nil
}

// Put stores value under key.
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	if _, err := s.kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("kv put %s: %w", key, err)
	}
	s.remember(key)
	return nil
}

func (s *Store) remember(key string) {
	s.mu.Lock()
	s.known[key] = true
	s.mu.Unlock()
}
