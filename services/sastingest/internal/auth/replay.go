package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrReplayed is a delivery id seen before.
var ErrReplayed = errors.New("delivery id seen before")

// ErrReplayUnavailable is a failure of the bucket that remembers deliveries.
var ErrReplayUnavailable = errors.New("replay store unavailable")

// DeliveriesBucket remembers delivery ids in JetStream, so the replay
// defence survives restarts.
const DeliveriesBucket = "SARIF_DELIVERIES"

// Replay remembers webhook delivery ids for a TTL in a JetStream KV bucket.
type Replay struct{ kv jetstream.KeyValue }

// NewReplay creates (or opens) the deliveries bucket with the given TTL.
func NewReplay(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*Replay, error) {
	if replicas <= 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: DeliveriesBucket, Description: "webhook delivery ids, for replay defence", TTL: ttl, History: 1, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", DeliveriesBucket, err)
	}
	return &Replay{kv: kv}, nil
}

func deliveryKey(provider, id string) string {
	h := sha256.Sum256([]byte(provider + "\x00" + id))
	return hex.EncodeToString(h[:20])
}

// Claim records a delivery; it fails with ErrReplayed if it was recorded
// before.
func (r *Replay) Claim(ctx context.Context, provider, id string) error {
	_, err := r.kv.Create(ctx, deliveryKey(provider, id), []byte(time.Now().UTC().Format(time.RFC3339)))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return ErrReplayed
	default:
		return fmt.Errorf("%w: %w", ErrReplayUnavailable, err)
	}
}

// Release forgets a delivery whose processing failed, so the sender's
// retry is accepted.
func (r *Replay) Release(ctx context.Context, provider, id string) error {
	return r.kv.Purge(ctx, deliveryKey(provider, id))
}
