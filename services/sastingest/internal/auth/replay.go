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

// ErrReplayed is a delivery id, or a signed body, seen before.
var ErrReplayed = errors.New("delivery seen before")

// ErrReplayUnavailable is a failure of the bucket that remembers deliveries.
var ErrReplayUnavailable = errors.New("replay store unavailable")

// DeliveriesBucket remembers delivery ids in JetStream, so the replay
// defence survives restarts.
const DeliveriesBucket = "SARIF_DELIVERIES"

// Replay remembers webhook delivery ids and the digests of their signed
// bodies for a TTL in a JetStream KV bucket.
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

// contentKey names a signed body: its SHA-256 under the provider.
func contentKey(provider string, digest []byte) string {
	h := sha256.Sum256(append([]byte(provider+"\x00content\x00"), digest...))
	return "c" + hex.EncodeToString(h[:20])
}

// Claim records a delivery and the SHA-256 of its signed body; it fails
// with ErrReplayed if either was recorded before. A signed body re-sent
// under a new delivery id is a replay too: the signature covers the body,
// not the delivery id (GitHub's scheme), so a captured delivery could
// otherwise be sent again as new.
func (r *Replay) Claim(ctx context.Context, provider, id string, digest []byte) error {
	now := []byte(time.Now().UTC().Format(time.RFC3339))
	if err := r.create(ctx, contentKey(provider, digest), now); err != nil {
		return err
	}
	if err := r.create(ctx, deliveryKey(provider, id), now); err != nil {
		if perr := r.kv.Purge(ctx, contentKey(provider, digest)); perr != nil {
			return fmt.Errorf("%w: %w", ErrReplayUnavailable, perr)
		}
		return err
	}
	return nil
}

func (r *Replay) create(ctx context.Context, key string, value []byte) error {
	_, err := r.kv.Create(ctx, key, value)
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
func (r *Replay) Release(ctx context.Context, provider, id string, digest []byte) error {
	return errors.Join(r.kv.Purge(ctx, deliveryKey(provider, id)), r.kv.Purge(ctx, contentKey(provider, digest)))
}
