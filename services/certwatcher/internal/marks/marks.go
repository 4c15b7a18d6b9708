package marks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/utils/clock"
)

// Store is a KV-backed set of keys with values, with a local cache of the
// keys known to exist and when they were last written.
type Store struct {
	kv      jetstream.KeyValue
	refresh time.Duration // rewrite a consulted mark older than this
	clock   clock.PassiveClock
	mu      sync.Mutex
	known   map[string]time.Time
}

// Option configures Open.
type Option func(*Store)

// WithClock sets the clock used to decide when a mark is rewritten.
func WithClock(c clock.PassiveClock) Option { return func(s *Store) { s.clock = c } }

// Open creates (or updates) the bucket, with marks kept for ttl (0: for
// ever), and returns a Store over it.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, ttl time.Duration, opts ...Option) (*Store, error) {
	if replicas < 1 {
		replicas = 1
	}
	if ttl < 0 {
		return nil, fmt.Errorf("kv bucket %s: negative TTL %s", bucket, ttl)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "certwatcher: expiry thresholds reported and rotation requests handled",
		History:     1,
		TTL:         ttl,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("kv bucket %s: %w", bucket, err)
	}
	s := &Store{kv: kv, refresh: ttl / 2, clock: clock.RealClock{}, known: map[string]time.Time{}}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Has reports whether key was put. A key found older than half the TTL is
// written again, so a mark that is still consulted does not expire.
func (s *Store) Has(ctx context.Context, key string) (bool, error) {
	now := s.clock.Now()
	s.mu.Lock()
	written, ok := s.known[key]
	s.mu.Unlock()
	if ok && (s.refresh == 0 || now.Sub(written) < s.refresh) {
		return true, nil
	}
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kv get %s: %w", key, err)
	}
	written = e.Created()
	if s.refresh > 0 && now.Sub(written) >= s.refresh {
		if _, err := s.kv.Put(ctx, key, e.Value()); err != nil {
			return false, fmt.Errorf("kv refresh %s: %w", key, err)
		}
		written = now
	}
	s.remember(key, written)
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
	s.remember(key, s.clock.Now())
	return nil
}

func (s *Store) remember(key string, written time.Time) {
	s.mu.Lock()
	s.known[key] = written
	s.mu.Unlock()
}

// DefaultTTL is the mark TTL for thresholds whose earliest warning comes
// longest before expiry: twice that, and at least a week.
func DefaultTTL(longest time.Duration) time.Duration {
	return max(2*longest, 7*24*time.Hour)
}
